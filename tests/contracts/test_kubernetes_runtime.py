"""Contracts of the kubelet, Pod Security Admission, the API server and pulumi-kubernetes: what starts a
pod's containers, what admits them, and how the provider creates, replaces and waits for objects."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from components.kubernetes.objects import PATCH_FORCE_ANNOTATION, REPLACE_UNREADY_ANNOTATION, TIMEOUT_ANNOTATION
from escluster.k8s_plan import CERTS_DIR, STATEFULSET_BASE_TIMEOUT_SECONDS, STATEFULSET_PER_POD_TIMEOUT_SECONDS
from tests.conftest import rendered
from tests.contracts.conditions import k8s_object_name, k8s_pod_spec
from tests.harness import Registration, Render, stacks_of_target

K8S_STACKS = stacks_of_target("kubernetes")
WORKLOADS = ("kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")
NAMESPACE = "kubernetes:core/v1:Namespace"
STATEFULSET, JOB = WORKLOADS[0], WORKLOADS[2]
SECRET, CONFIG_MAP = "kubernetes:core/v1:Secret", "kubernetes:core/v1:ConfigMap"
PVC_PATCH = "kubernetes:core/v1:PersistentVolumeClaimPatch"
SERVICE = "kubernetes:core/v1:Service"
# The images' numeric USER (elastic/dockerfiles): the kubelet checks it when runAsUser is unset.
IMAGE_UID = 1000
DEFAULT_AWAIT_SECONDS = 600


def workloads(render: Render) -> Iterator[Registration]:
    for kind in WORKLOADS:
        yield from render.of_type(kind)


def containers(workload: Registration) -> Iterator[dict[str, Any]]:
    pod = k8s_pod_spec(workload)
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def check_run_as_non_root(render: Render) -> None:
    """kubernetes/kubernetes `pkg/kubelet/kuberuntime/security_context_others.go` verifyRunAsNonRoot, on
    `securitycontext.DetermineEffectiveSecurityContext` (container fields over the pod's), for init
    containers as for the others: under an effective runAsNonRoot, a container whose effective user is 0
    gets "container's runAsUser breaks non-root policy" and never starts."""
    for workload in workloads(render):
        pod = k8s_pod_spec(workload).get("securityContext", {})
        for container in containers(workload):
            own = container.get("securityContext", {})
            non_root = own.get("runAsNonRoot", pod.get("runAsNonRoot", False))
            user = own.get("runAsUser", pod.get("runAsUser", IMAGE_UID))
            assert not (non_root and int(user) == 0), (
                f"{workload.name}/{container['name']}: runs as uid 0 under runAsNonRoot; the kubelet will not start it"
            )


def namespace_levels(render: Render) -> dict[str, str]:
    return {
        k8s_object_name(ns): ns.inputs["metadata"]
        .get("labels", {})
        .get("pod-security.kubernetes.io/enforce", "privileged")
        for ns in render.of_type(NAMESPACE)
    }


def baseline_violations(workload: Registration) -> list[str]:
    """The `baseline` checks of kubernetes/pod-security-admission `policy/` our pods could meet:
    check_privileged.go, check_hostNamespaces.go, check_capabilities_baseline.go (init containers too)."""
    found = []
    pod = k8s_pod_spec(workload)
    if any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")):
        found.append("host namespaces")
    for container in containers(workload):
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{container['name']} is privileged")
        if context.get("capabilities", {}).get("add"):
            found.append(f"{container['name']} adds capabilities")
    return found


def check_pod_security_levels(render: Render) -> None:
    """kubernetes/pod-security-admission: a namespace labelled `enforce: baseline` (or `restricted`) rejects
    pods with privileged or capability-adding containers, init containers included
    (`admission.go` enforces on Pods, only warns on StatefulSets: the replicas never appear). Every
    namespace this stack creates says its level, and no pod breaks it."""
    levels = namespace_levels(render)
    for namespace, level in levels.items():
        assert level in ("privileged", "baseline", "restricted"), f"{namespace}: unknown level {level}"
    for workload in workloads(render):
        namespace = str(workload.outputs["metadata"]["namespace"])
        if namespace in levels and levels[namespace] != "privileged":
            assert not baseline_violations(workload), (
                f"{workload.name}: {baseline_violations(workload)} in namespace {namespace} ({levels[namespace]})"
            )
    for created in render.of_type(NAMESPACE):
        assert "pod-security.kubernetes.io/enforce" in created.inputs["metadata"].get("labels", {}), (
            f"{k8s_object_name(created)}: no Pod Security label; the cluster's default decides"
        )


def readers(render: Render) -> Iterator[tuple[Registration, str, str, str]]:
    """(workload, kind of object, object name, how it is read: env, subPath, directory, or "reloaded": the
    directory of TLS files an Elasticsearch node watches and reloads (elastic/elasticsearch x-pack
    `SSLConfigurationReloader`))."""
    for workload in workloads(render):
        pod = k8s_pod_spec(workload)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in containers(workload):
            for variable in container.get("env", []):
                for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    if key in variable.get("valueFrom", {}):
                        yield workload, kind, variable["valueFrom"][key]["name"], "env"
            for mount in container.get("volumeMounts", []):
                volume = volumes.get(mount["name"], {})
                for kind, key, name_key in (("Secret", "secret", "secretName"), ("ConfigMap", "configMap", "name")):
                    if key in volume:
                        how = "subPath" if "subPath" in mount else "directory"
                        if (
                            how == "directory"
                            and mount["mountPath"] == CERTS_DIR
                            and container["name"] == "elasticsearch"
                        ):
                            how = "reloaded"
                        yield workload, kind, volume[key][name_key], how


def check_changed_data_reaches_readers(render: Render) -> None:
    """pulumi/pulumi-kubernetes `provider/pkg/provider/diff.go` forceNewProperties: a Secret or ConfigMap
    whose data changes is replaced; an auto-named one gets a new name (create before delete), a named one
    keeps its name (delete before replace, provider.go Diff). A reader through env or subPath sees new data
    only when its pod is recreated: the object must be auto-named, so its new name changes the pod
    template (or a Job's template, which replaces the Job). The same holds for a directory read once at
    start (Kibana's keystore files); only files the process reloads may come from a named object, whose
    directory the kubelet updates in place — and only if the provider updates it in place too: under
    `enableSecretMutable` / `enableConfigMapMutable` (provider.go Configure) the data is not forceNew. A
    delete-before-replace would take the files away from running pods, and the engine replaces, with a
    delete-before-replace, whatever depends on it that the provider says must go (deployment's
    `calculateDependentReplacements`)."""
    objects = {
        (kind.rsplit(":", 1)[1], k8s_object_name(r)): r for kind in (SECRET, CONFIG_MAP) for r in render.of_type(kind)
    }
    providers = {f"{p.urn}::{p.id}": p for p in render.of_type("pulumi:providers:kubernetes")}
    for workload, kind, name, how in readers(render):
        assert (kind, name) in objects, f"{workload.name}: reads {kind} {name}, which this stack does not make"
        source = objects[kind, name]
        if not source.inputs["metadata"].get("name"):
            continue
        assert how == "reloaded", (
            f"{workload.name}: reads {kind} {name} through {how}; with a fixed name, new data never reaches it"
        )
        flag = "enableSecretMutable" if kind == "Secret" else "enableConfigMapMutable"
        provider = providers.get(source.provider)
        assert provider is not None and str(provider.inputs.get(flag)).lower() == "true", (
            f"{source.name}: a fixed-name {kind} on a provider without {flag}; new data replaces it "
            f"(deleted first) under {workload.name}'s running pods"
        )


def check_jobs_and_timeouts(render: Render) -> None:
    """pulumi-kubernetes `provider/pkg/await`: every awaited kind waits 10 minutes unless
    `pulumi.com/timeoutSeconds` says otherwise; a failed Job fails the `up` and, without
    `pulumi.com/replaceUnready: "true"` (provider.go Diff, Jobs only), is never run again."""
    for job in render.of_type(JOB):
        annotations = job.inputs["metadata"].get("annotations", {})
        assert annotations.get(REPLACE_UNREADY_ANNOTATION) == "true", f"{job.name}: a failed Job would never run again"
        deadline = job.inputs["spec"].get("activeDeadlineSeconds", 0)
        assert int(annotations.get(TIMEOUT_ANNOTATION, DEFAULT_AWAIT_SECONDS)) > deadline, (
            f"{job.name}: Pulumi stops waiting before the Job's own deadline"
        )
    for statefulset in render.of_type(STATEFULSET):
        replicas = int(statefulset.inputs["spec"]["replicas"])
        wanted = STATEFULSET_BASE_TIMEOUT_SECONDS + STATEFULSET_PER_POD_TIMEOUT_SECONDS * replicas
        timeout = int(
            statefulset.inputs["metadata"].get("annotations", {}).get(TIMEOUT_ANNOTATION, DEFAULT_AWAIT_SECONDS)
        )
        assert timeout >= wanted, f"{statefulset.name}: waits {timeout} s for {replicas} pods to start or roll"
    for deployment in render.of_type("kubernetes:apps/v1:Deployment"):
        assert TIMEOUT_ANNOTATION in deployment.inputs["metadata"].get("annotations", {}), (
            f"{deployment.name}: the 10-minute default"
        )


def check_claims_survive(render: Render) -> None:
    """The API server (`pkg/apis/apps/validation` ValidateStatefulSetUpdate) forbids changing
    volumeClaimTemplates, and pulumi-kubernetes would replace the StatefulSet instead: all pods at once.
    The namespace controller deletes every object of a deleted namespace, claims included (a claim
    retention policy only covers the StatefulSet's own deletion), so the namespace is retained, and the
    next `up` must adopt it rather than fail on "already exists": pulumi-kubernetes creates with a plain
    Create unless its provider has `upsertExistingObjects` (provider/pkg/await/await.go Creation). A PVC
    patch applies the size the StatefulSet controller set and owns: without `pulumi.com/patchForce` a new
    size conflicts with that manager (await.go patchForce, server-side apply). Deleting a PVC patch
    relinquishes the size, a required field (ssa.Relinquish fails: "set the retainOnDelete resource option")."""
    for statefulset in render.of_type(STATEFULSET):
        assert "spec.volumeClaimTemplates" in statefulset.ignore_changes, (
            f"{statefulset.name}: a volume change would replace the StatefulSet"
        )
    with_claims = {str(s.outputs["metadata"]["namespace"]) for s in render.of_type(STATEFULSET)}
    for namespace in render.of_type(NAMESPACE):
        if k8s_object_name(namespace) in with_claims:
            assert namespace.retain_on_delete or namespace.protect, (
                f"{namespace.name}: deleting it deletes the data claims"
            )
    providers = {f"{p.urn}::{p.id}": p for p in render.resources if p.type == "pulumi:providers:kubernetes"}
    for namespace in render.of_type(NAMESPACE):
        if k8s_object_name(namespace) in with_claims:
            provider = providers.get(namespace.provider)
            adopts = provider is not None and str(provider.inputs.get("upsertExistingObjects")).lower() == "true"
            assert adopts, f"{namespace.name}: kept by a destroy, it would make the next `up` fail"
    for patch in render.of_type(PVC_PATCH):
        assert patch.retain_on_delete, f"{patch.name}: its deletion would fail on the claim's required size"
        annotations = patch.inputs["metadata"].get("annotations", {})
        assert annotations.get(PATCH_FORCE_ANNOTATION) == "true", f"{patch.name}: a new size would conflict"


def check_namespace_first(render: Render) -> None:
    """The API server refuses an object in a namespace that does not exist: every object of a namespace
    this stack creates waits for that Namespace (a component's depends_on does not reach its children)."""
    namespaces = {k8s_object_name(ns): ns.urn for ns in render.of_type(NAMESPACE)}
    by_urn = render.by_urn()
    for resource in render.resources:
        if not resource.type.startswith("kubernetes:") or not resource.custom or resource.type == NAMESPACE:
            continue
        namespace = (
            resource.outputs.get("metadata", {}).get("namespace")
            if isinstance(resource.outputs.get("metadata"), dict)
            else None
        )
        if namespace in namespaces:
            assert namespaces[namespace] in ancestors(resource, by_urn), (
                f"{resource.name}: may be created before {namespace}"
            )


def ancestors(resource: Registration, by_urn: Mapping[str, Registration]) -> set[str]:
    seen: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn not in seen:
            seen.add(urn)
            todo += by_urn[urn].dependencies if urn in by_urn else []
    return seen


def check_setup_pod_stays_out_of_es_services(render: Render) -> None:
    """A Service selects every pod whose labels include its selector: the setup Job's pod must not carry
    the Elasticsearch selector, or it would be an endpoint of the ES Services and of discovery's DNS."""
    for job in render.of_type(JOB):
        labels = job.inputs["spec"]["template"]["metadata"].get("labels", {})
        behind = sorted(
            service.name
            for service in render.of_type(SERVICE)
            if (selector := service.inputs["spec"].get("selector", {})) and selector.items() <= labels.items()
        )
        assert not behind, f"{job.name}: its pod is behind {', '.join(behind)}"


CONTRACTS = {
    "kubelet runAsNonRoot": check_run_as_non_root,
    "Pod Security levels": check_pod_security_levels,
    "Secret and ConfigMap changes reach readers": check_changed_data_reaches_readers,
    "Jobs and await timeouts": check_jobs_and_timeouts,
    "data claims survive": check_claims_survive,
    "namespace first": check_namespace_first,
    "setup pod outside ES Services": check_setup_pod_stays_out_of_es_services,
}


@pytest.mark.parametrize("stack", K8S_STACKS)
@pytest.mark.parametrize("contract", list(CONTRACTS), ids=str)
def test_kubernetes_stack_keeps_the_runtime_contract(stack: str, contract: str) -> None:
    CONTRACTS[contract](rendered(stack))


def broken(stack: str = "prod") -> Render:
    return copy.deepcopy(rendered(stack))


def pod(render: Render, name: str) -> dict[str, Any]:
    return k8s_pod_spec(render.named(name))


def test_pod_level_run_as_non_root_over_the_root_sysctl_step_is_caught() -> None:
    """The original defect: `runAsNonRoot: true` on the pod, the sysctl init container as root."""
    result = broken()
    spec = pod(result, "prod-es")
    spec["securityContext"]["runAsNonRoot"] = True
    del spec["initContainers"][0]["securityContext"]["runAsNonRoot"]
    with pytest.raises(AssertionError, match="prod-es/sysctl: runs as uid 0 under runAsNonRoot"):
        check_run_as_non_root(result)


def test_a_privileged_step_in_a_baseline_namespace_is_caught() -> None:
    result = broken()
    result.named("elastic").inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"
    with pytest.raises(AssertionError, match="sysctl is privileged"):
        check_pod_security_levels(result)


def test_an_unlabelled_namespace_is_caught() -> None:
    result = broken("k8s-metallb")
    result.named("kmb-lb-namespace").inputs["metadata"]["labels"] = {}
    with pytest.raises(AssertionError, match="metallb-system: no Pod Security label"):
        check_pod_security_levels(result)


def test_a_fixed_name_secret_read_through_env_is_caught() -> None:
    """The original defect: a rotated password in a fixed-name Secret never reached Kibana."""
    result = broken()
    secret = next(s for s in result.of_type(SECRET) if s.name == "prod-kibana-keystore")
    secret.inputs["metadata"]["name"] = k8s_object_name(secret)
    with pytest.raises(
        AssertionError, match=r"reads Secret prod-kibana-keystore-.* through directory; with a fixed name"
    ):
        check_changed_data_reaches_readers(result)


def test_a_fixed_name_secret_on_a_provider_that_replaces_it_is_caught() -> None:
    """The certificates' Secret on the default provider: a renewal would delete it under running pods."""
    result = broken()
    certs = result.named("prod-es-certs")
    default = next(p for p in result.of_type("pulumi:providers:kubernetes") if p.name == "kubernetes-namespace")
    certs.provider = f"{default.urn}::{default.id}"
    with pytest.raises(
        AssertionError, match="prod-es-certs: a fixed-name Secret on a provider without enableSecretMutable"
    ):
        check_changed_data_reaches_readers(result)


def test_a_job_without_replace_unready_is_caught() -> None:
    result = broken()
    del result.named("prod-setup").inputs["metadata"]["annotations"][REPLACE_UNREADY_ANNOTATION]
    with pytest.raises(AssertionError, match="a failed Job would never run again"):
        check_jobs_and_timeouts(result)


def test_a_statefulset_on_the_default_timeout_is_caught() -> None:
    result = broken()
    del result.named("prod-es").inputs["metadata"]["annotations"][TIMEOUT_ANNOTATION]
    with pytest.raises(AssertionError, match="waits 600 s for 3 pods"):
        check_jobs_and_timeouts(result)


def test_claim_templates_not_ignored_are_caught() -> None:
    result = broken()
    result.named("prod-es").ignore_changes = []
    with pytest.raises(AssertionError, match="a volume change would replace the StatefulSet"):
        check_claims_survive(result)


def test_a_namespace_deleted_with_the_stack_is_caught() -> None:
    """The original defect: `pulumi destroy` deleted the namespace, and every data claim in it."""
    result = broken()
    result.named("elastic").retain_on_delete = False
    with pytest.raises(AssertionError, match="deleting it deletes the data claims"):
        check_claims_survive(result)


def test_a_claim_patch_without_force_is_caught() -> None:
    result = broken()
    del result.named("data-prod-es-1").inputs["metadata"]["annotations"][PATCH_FORCE_ANNOTATION]
    with pytest.raises(AssertionError, match="data-prod-es-1: a new size would conflict"):
        check_claims_survive(result)


def test_a_retained_namespace_the_next_up_cannot_adopt_is_caught() -> None:
    result = broken()
    namespace = result.named("elastic")
    provider = next(p for p in result.resources if f"{p.urn}::{p.id}" == namespace.provider)
    provider.inputs["upsertExistingObjects"] = "false"
    with pytest.raises(AssertionError, match="kept by a destroy, it would make the next `up` fail"):
        check_claims_survive(result)


def test_an_object_that_does_not_wait_for_its_namespace_is_caught() -> None:
    result = broken()
    namespace = result.named("elastic").urn
    config = next(r for r in result.of_type(CONFIG_MAP) if r.name == "prod-es-config")
    config.dependencies = [d for d in config.dependencies if d != namespace]
    with pytest.raises(AssertionError, match="prod-es-config: may be created before elastic"):
        check_namespace_first(result)


def test_a_setup_pod_with_the_es_labels_is_caught() -> None:
    """The original defect: the Job's pod carried the ES selector labels."""
    result = broken()
    es_labels = result.named("prod-es").inputs["spec"]["template"]["metadata"]["labels"]
    result.named("prod-setup").inputs["spec"]["template"]["metadata"]["labels"] = dict(es_labels)
    with pytest.raises(AssertionError, match="its pod is behind prod-es-headless, prod-es-http"):
        check_setup_pod_stays_out_of_es_services(result)
