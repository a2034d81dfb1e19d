"""docs/rules.md for a Kubernetes stack: schema validity, StatefulSet shape, MetalLB ordering, ES settings.

The policy pack judges TLS, passwords, heap, PodDisruptionBudgets and MetalLB references (the "policy
pack" entry of K8S_RULES); these are the rules of whether the objects apply and the cluster forms."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests import rules
from tests.harness import Registration, Render
from tests.policy_pack import check_policy_pack

KUBERNETES_VERSION = "1.30.0"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
POOL = "kubernetes:metallb.io/v1beta1:IPAddressPool"
ADVERTISEMENT = "kubernetes:metallb.io/v1beta1:L2Advertisement"
CRD_DIR = Path(__file__).parent / "data" / "metallb"
CRD_FILES = {POOL: "metallb.io_ipaddresspools.yaml", ADVERTISEMENT: "metallb.io_l2advertisements.yaml"}
POD_NAME = "${POD_NAME}"


def manifest(resource: Registration) -> dict[str, Any]:
    """The object as the API server gets it (pulumi-kubernetes inputs use the API's field names)."""
    return dict(resource.inputs)


HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def k8s_objects(render: Render) -> list[Registration]:
    """The objects the API server gets (a Helm release is the provider's own, not an object)."""
    return [
        r
        for r in render.resources
        if r.type.startswith("kubernetes:") and r.type not in CRD_FILES and r.type != HELM_RELEASE and r.custom
    ]


def check_kubernetes_schema(render: Render) -> None:
    for resource in k8s_objects(render):
        try:
            kubernetes_validate.validate(manifest(resource), KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"{resource.name}: {error.message} at {list(error.path)}") from None


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema with unknown fields rejected, as MetalLB's users would want the API server to."""
    closed = dict(schema)
    if "properties" in closed:
        closed["properties"] = {k: _closed(v) for k, v in closed["properties"].items()}
        closed.setdefault("additionalProperties", False)
    if isinstance(closed.get("items"), dict):
        closed["items"] = _closed(closed["items"])
    return closed


@cache
def crd_schema(resource_type: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRD_DIR / CRD_FILES[resource_type]).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    return _closed(version["schema"]["openAPIV3Schema"])


def check_metallb_schema(render: Render) -> None:
    for resource in render.of_type(POOL) + render.of_type(ADVERTISEMENT):
        assert resource.inputs["apiVersion"] == "metallb.io/v1beta1", f"{resource.name}: not metallb.io/v1beta1"
        body = {k: v for k, v in manifest(resource).items() if k in ("spec",)}
        try:
            jsonschema.validate(body, crd_schema(resource.type))
        except jsonschema.ValidationError as error:
            raise AssertionError(f"{resource.name}: {error.message}") from None


def check_metallb_order(render: Render) -> None:
    """A LoadBalancer Service waits for the pools and advertisements before it waits for an IP (what they
    name and hold is the policy pack's metallb-objects and metallb-references)."""
    urns = {r.urn for r in render.of_type(POOL) + render.of_type(ADVERTISEMENT)}
    for service in render.of_type(SERVICE):
        if service.inputs["spec"].get("type") == "LoadBalancer":
            assert urns <= waits_on(render, service), f"{service.name}: may wait for an IP before the pool exists"


def waits_on(render: Render, resource: Registration) -> set[str]:
    """Every URN the resource depends on, directly or through components."""
    by_urn, seen, todo = render.by_urn(), set(), list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        todo += [r.urn for r in render.resources if r.parent == urn]
        if urn in by_urn:
            todo += by_urn[urn].dependencies
    return seen


def object_name(resource: Registration) -> str:
    """The object's name in the cluster: given, or made by pulumi-kubernetes' auto-naming."""
    return str(resource.outputs["metadata"]["name"])


def pod_spec(statefulset: Registration) -> dict[str, Any]:
    spec: dict[str, Any] = statefulset.inputs["spec"]["template"]["spec"]
    return spec


def es_container(statefulset: Registration) -> dict[str, Any]:
    return next(c for c in pod_spec(statefulset)["containers"] if c["name"] == "elasticsearch")


def settings_of(render: Render, statefulset: Registration) -> dict[str, Any]:
    config_maps = {object_name(c): c for c in render.of_type(CONFIG_MAP)}
    volume = next(v for v in pod_spec(statefulset)["volumes"] if "configMap" in v)
    settings = yaml.safe_load(config_maps[volume["configMap"]["name"]].inputs["data"]["elasticsearch.yml"])
    assert isinstance(settings, dict)
    return settings


def pods_of(statefulset: Registration) -> list[str]:
    name, replicas = statefulset.inputs["metadata"]["name"], int(statefulset.inputs["spec"]["replicas"])
    return [f"{name}-{i}" for i in range(replicas)]


def check_statefulsets(render: Render) -> None:
    headless = [s for s in render.of_type(SERVICE) if s.inputs["spec"].get("clusterIP") == "None"]
    assert headless, "no headless Service"
    for sts in render.of_type(STATEFULSET):
        spec, labels = sts.inputs["spec"], sts.inputs["spec"]["template"]["metadata"]["labels"]
        assert sts.inputs["metadata"]["name"] == sts.name, f"{sts.name}: name is not explicit"
        service = next((s for s in headless if s.inputs["metadata"]["name"] == spec["serviceName"]), None)
        assert service, f"{sts.name}: serviceName is no headless Service"
        assert service.inputs["spec"].get("publishNotReadyAddresses") is True, f"{service.name}: hides forming pods"
        assert service.inputs["spec"]["selector"].items() <= labels.items(), f"{service.name}: does not select the pods"
        assert spec.get("podManagementPolicy") == "Parallel", f"{sts.name}: OrderedReady deadlocks the bootstrap"
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        container, pod = es_container(sts), pod_spec(sts)
        assert container.get("readinessProbe"), f"{sts.name}: no readinessProbe"
        assert pod.get("affinity", {}).get("podAntiAffinity"), f"{sts.name}: no podAntiAffinity"
        assert pod.get("securityContext", {}).get("fsGroup") is not None, f"{sts.name}: no fsGroup"
        claims = [t for t in spec.get("volumeClaimTemplates", []) if t["metadata"]["name"] == "data"]
        assert claims, f"{sts.name}: data is not on a volume claim"
        assert {"mountPath": rules.ES_DATA, "name": "data"}.items() <= next(
            m for m in container["volumeMounts"] if m["name"] == "data"
        ).items(), f"{sts.name}: data volume not at {rules.ES_DATA}"
        retention = spec.get("persistentVolumeClaimRetentionPolicy", {})
        assert retention.get("whenDeleted") == "Retain", f"{sts.name}: claims deleted with the StatefulSet"
        settings = settings_of(render, sts)
        sysctl = [
            c for c in pod.get("initContainers", []) if any("vm.max_map_count" in part for part in c.get("command", []))
        ]
        if sysctl:
            context = sysctl[0].get("securityContext", {})
            assert context.get("privileged") is True and context.get("runAsUser") == 0, (
                f"{sts.name}: sysctl unprivileged"
            )
        else:
            assert settings.get("node.store.allow_mmap") is False, f"{sts.name}: no max_map_count step, mmap still on"


def check_secret_data_is_secret(render: Render) -> None:
    """Secret data is a Pulumi secret, so state holds it encrypted (env read from Secrets is the policy pack's
    no-plaintext-passwords)."""
    for secret in render.of_type(SECRET):
        assert secret.input_is_secret("stringData"), f"{secret.name}: Secret data is not a Pulumi secret"


def check_settings(render: Render) -> None:
    everything = []
    secrets = {object_name(s): s for s in render.of_type(SECRET)}
    for sts in render.of_type(STATEFULSET):
        settings = settings_of(render, sts)
        volume = next(v for v in pod_spec(sts)["volumes"] if "secret" in v)
        mount = next(m for m in es_container(sts)["volumeMounts"] if m["name"] == volume["name"])
        keys = set(secrets[volume["secret"]["secretName"]].inputs["stringData"])
        for pod in pods_of(sts):
            pod_settings = {
                k: (
                    v.replace(POD_NAME, pod)
                    if isinstance(v, str)
                    else [i.replace(POD_NAME, pod) for i in v]
                    if isinstance(v, list)
                    else v
                )
                for k, v in settings.items()
            }
            everything.append(pod_settings)
            for layer in ("http", "transport"):  # that TLS is on is the policy pack's elasticsearch-tls
                prefix = f"xpack.security.{layer}.ssl"
                for path in [
                    pod_settings[f"{prefix}.key"],
                    pod_settings[f"{prefix}.certificate"],
                    *pod_settings[f"{prefix}.certificate_authorities"],
                ]:
                    relative = path.removeprefix(mount["mountPath"] + "/")
                    assert relative in keys, f"{pod}: {path} is not in the mounted Secret"
    headless = {
        f"{s.inputs['metadata']['name']}.{s.inputs['metadata']['namespace']}.svc"
        for s in render.of_type(SERVICE)
        if s.inputs["spec"].get("clusterIP") == "None"
    }
    rules.check_settings_discovery(everything, headless)


K8S_RULES = {
    "policy pack": check_policy_pack,
    "Kubernetes schema (strict)": check_kubernetes_schema,
    "MetalLB CRD schema": check_metallb_schema,
    "MetalLB pools before services": check_metallb_order,
    "StatefulSets": check_statefulsets,
    "Secret data secret": check_secret_data_is_secret,
    "ES settings": check_settings,
    "no plain-text secrets": rules.check_no_plain_secrets,
    "deploy order": rules.check_deploy_order,
}
