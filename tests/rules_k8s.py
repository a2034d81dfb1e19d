"""RULES.md for a Kubernetes stack: schema validity, StatefulSet shape, MetalLB wiring, ES settings."""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from escluster.kubernetes import parse_addresses
from escluster.units import parse_size
from tests import rules
from tests.harness import Registration, Render

KUBERNETES_VERSION = "1.30.0"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
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


def check_metallb_wiring(render: Render) -> None:
    pools = {p.inputs["metadata"]["name"]: p for p in render.of_type(POOL)}
    ranges = {name: [parse_addresses(a) for a in p.inputs["spec"]["addresses"]] for name, p in pools.items()}
    announced: set[str] = set()
    for advertisement in render.of_type(ADVERTISEMENT):
        names = advertisement.inputs["spec"].get("ipAddressPools", [])
        for name in names:
            assert name in pools, f"{advertisement.name}: announces unknown pool {name} (MetalLB ignores it)"
        announced |= set(names)
        namespaces = {p.inputs["metadata"]["namespace"] for p in pools.values()}
        assert namespaces == {advertisement.inputs["metadata"]["namespace"]}, f"{advertisement.name}: other namespace"
    assert set(pools) <= announced, f"pools nobody announces: {set(pools) - announced}"
    urns = {r.urn for r in render.of_type(POOL) + render.of_type(ADVERTISEMENT)}
    for service in render.of_type(SERVICE):
        if service.inputs["spec"].get("type") != "LoadBalancer":
            continue
        annotations = service.inputs["metadata"].get("annotations", {})
        pool = annotations.get("metallb.io/address-pool")
        assert pool in pools, f"{service.name}: asks for pool {pool}, which does not exist"
        for ip in filter(None, annotations.get("metallb.io/loadBalancerIPs", "").split(",")):
            assert any(ipaddress.ip_address(ip) in r for r in ranges[pool]), f"{service.name}: {ip} outside {pool}"
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
    pdbs = render.of_type(PDB)
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
        assert any(p.inputs["spec"]["selector"]["matchLabels"].items() <= labels.items() for p in pdbs), (
            f"{sts.name}: no PodDisruptionBudget covers the pods"
        )
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


def check_memory_and_secrets(render: Render) -> None:
    for sts in render.of_type(STATEFULSET):
        container = es_container(sts)
        limit = container.get("resources", {}).get("limits", {}).get("memory")
        assert limit, f"{sts.name}: no memory limit"
        env = {e["name"]: e for e in container.get("env", [])}
        sizes = re.findall(r"-Xm[sx](\S+)", env["ES_JAVA_OPTS"]["value"])
        assert len(sizes) == 2 and sizes[0] == sizes[1], f"{sts.name}: heap not fixed"
        assert parse_size(sizes[0]) * 2 <= parse_size(limit), f"{sts.name}: heap above 50% of {limit}"
    for resource in (
        render.of_type(STATEFULSET)
        + render.of_type("kubernetes:apps/v1:Deployment")
        + render.of_type("kubernetes:batch/v1:Job")
    ):
        for container in resource.inputs["spec"]["template"]["spec"]["containers"]:
            for variable in container.get("env", []):
                if rules.SECRET_ENV_NAME.search(variable["name"]):
                    assert "secretKeyRef" in variable.get("valueFrom", {}), (
                        f"{resource.name}: {variable['name']} is not read from a Secret"
                    )
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
            for layer in ("http", "transport"):
                prefix = f"xpack.security.{layer}.ssl"
                assert pod_settings.get(f"{prefix}.enabled") is True, f"{pod}: {layer} TLS off"
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
    "Kubernetes schema (strict)": check_kubernetes_schema,
    "MetalLB CRD schema": check_metallb_schema,
    "MetalLB pools, advertisement, services": check_metallb_wiring,
    "StatefulSets": check_statefulsets,
    "memory and secrets": check_memory_and_secrets,
    "ES settings": check_settings,
    "no plain-text secrets": rules.check_no_plain_secrets,
    "deploy order": rules.check_deploy_order,
}
