"""The policy pack (policy/): every rendered stack passes every policy, in `pulumi up` and in its first
preview (where certificates, passwords and ids are not known yet), and each policy catches the violations
it claims, on renders broken one way at a time, as mandatory violations in a first preview too."""

from __future__ import annotations

import base64
import copy
import runpy
from collections.abc import Callable
from typing import Any

import pulumi_policy
import pytest
import yaml

from elastic_policy.policies import POLICIES
from tests.conftest import rendered
from tests.first_preview import UNKNOWN, first_preview, unknown_paths
from tests.harness import ROOT, Registration, Render, stacks_in_repo
from tests.policy_pack import MANDATORY, judge

BY_NAME = {policy.name: policy for policy in POLICIES}
RUNS: dict[str, Callable[[str], Render]] = {"up": rendered, "first preview": first_preview}


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("stack", stacks_in_repo())
def test_every_stack_passes_every_policy(stack: str, run: str) -> None:
    assert [str(finding) for finding in judge(RUNS[run](stack))] == []


def test_the_pack_enforces_every_policy() -> None:
    """policy/__main__.py, run as Pulumi runs it (its server replaced by a recorder)."""
    packs: list[dict[str, Any]] = []
    original = pulumi_policy.PolicyPack
    pulumi_policy.PolicyPack = lambda **kwargs: packs.append(kwargs)  # type: ignore[assignment,misc]
    try:
        runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="__main__")
    finally:
        pulumi_policy.PolicyPack = original  # type: ignore[misc]
    (pack,) = packs
    assert pulumi_policy.policy._POLICY_PACK_NAME_RE.match(pack["name"]), "Pulumi refuses the pack's name"
    assert pack["policies"] == list(POLICIES)
    assert pack["enforcement_level"] is pulumi_policy.EnforcementLevel.MANDATORY
    assert all(policy.enforcement_level is None for policy in POLICIES), "a policy below the pack's level"


# --- breaking a render one way at a time


def broken(render: Render, edit: Callable[[Render], None]) -> Render:
    result = copy.deepcopy(render)
    edit(result)
    return result


def custom(render: Render, type_: str, name: str | None = None) -> Registration:
    return next(r for r in render.resources if r.type == type_ and r.custom and name in (None, r.name))


def edit_settings(marker: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Render], None]:
    """Edit the first settings file holding `marker` (cluster.name for ES, elasticsearch.hosts for Kibana),
    wherever the target keeps it: a container upload, a swarm config or a ConfigMap."""

    def edit_text(text: str) -> str | None:
        if text == UNKNOWN:  # a first preview does not know this file
            return None
        settings = yaml.safe_load(text)
        if not isinstance(settings, dict) or marker not in settings:
            return None
        change(settings)
        return yaml.safe_dump(settings)

    def edit(render: Render) -> None:
        for r in render.resources:
            if r.type == "docker:index/container:Container":
                for upload in r.inputs.get("uploads", []):
                    if str(upload["file"]).endswith(".yml") and (new := edit_text(upload["content"])):
                        upload["content"] = new
                        return
            data = str(r.inputs.get("data"))
            if r.type == "docker:index/serviceConfig:ServiceConfig" and (
                new := edit_text(data if data == UNKNOWN else base64.b64decode(data).decode())
            ):
                r.inputs["data"] = base64.b64encode(new.encode()).decode()
                return
            if r.type == "kubernetes:core/v1:ConfigMap":
                for key, text in r.inputs["data"].items():
                    if key.endswith(".yml") and (new := edit_text(text)):
                        r.inputs["data"][key] = new
                        return
        raise AssertionError(f"no settings file with {marker}")

    return edit


def es_settings(change: Callable[[dict[str, Any]], None]) -> Callable[[Render], None]:
    return edit_settings("cluster.name", change)


def kibana_settings(change: Callable[[dict[str, Any]], None]) -> Callable[[Render], None]:
    return edit_settings("elasticsearch.hosts", change)


def docker_env(name: str, entry: str) -> Callable[[Render], None]:
    return lambda render: render.named(name).inputs["envs"].append(entry)


def set_heap(name: str, options: str) -> Callable[[Render], None]:
    def edit(render: Render) -> None:
        envs = render.named(name).inputs["envs"]
        envs[:] = [e for e in envs if not e.startswith("ES_JAVA_OPTS=")] + [f"ES_JAVA_OPTS={options}"]

    return edit


def k8s_es_container(edit: Callable[[dict[str, Any]], None]) -> Callable[[Render], None]:
    def apply(render: Render) -> None:
        spec = custom(render, "kubernetes:apps/v1:StatefulSet").inputs["spec"]["template"]["spec"]
        edit(spec["containers"][0])

    return apply


def pdb(edit: Callable[[Registration], None]) -> Callable[[Render], None]:
    return lambda render: edit(custom(render, "kubernetes:policy/v1:PodDisruptionBudget"))


def drop_pdb(render: Render) -> None:
    render.resources.remove(custom(render, "kubernetes:policy/v1:PodDisruptionBudget"))


def metallb(type_: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[Render], None]:
    return lambda render: edit(custom(render, f"kubernetes:metallb.io/v1beta1:{type_}").inputs)


def es_service(edit: Callable[[dict[str, Any]], None]) -> Callable[[Render], None]:
    def apply(render: Render) -> None:
        service = next(
            r for r in render.of_type("kubernetes:core/v1:Service") if r.inputs["spec"].get("type") == "LoadBalancer"
        )
        edit(service.inputs)

    return apply


def add_unannounced_pool(render: Render) -> None:
    pool = copy.deepcopy(custom(render, "kubernetes:metallb.io/v1beta1:IPAddressPool"))
    pool.inputs["metadata"]["name"], pool.urn = "second-pool", pool.urn + "-second"
    pool.inputs["spec"]["addresses"] = ["10.0.0.0/29"]
    render.resources.append(pool)


def _swarm_env(render: Render) -> None:
    custom(render, "docker:index/service:Service", "staging-es-0").inputs["taskSpec"]["containerSpec"]["env"][
        "ELASTIC_PASSWORD"
    ] = "changeme"


def _swarm_no_limit(render: Render) -> None:
    del custom(render, "docker:index/service:Service", "staging-es-1").inputs["taskSpec"]["resources"]


def _kibana_env(render: Render) -> None:
    spec = custom(render, "kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    spec["containers"][0].setdefault("env", []).append({"name": "ELASTICSEARCH_PASSWORD", "value": "changeme"})


def _huge_heap(render: Render) -> None:
    render.named("dev-es-0").inputs.update(memory=100 * 1024, memorySwap=100 * 1024)
    set_heap("dev-es-0", "-Xms40g -Xmx40g")(render)


def _configmap_password(render: Render) -> None:
    spec = custom(render, "kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    reference = {"configMapKeyRef": {"name": "prod-kibana-config", "key": "password"}}
    spec["containers"][0].setdefault("env", []).append({"name": "ELASTICSEARCH_PASSWORD", "valueFrom": reference})


def pool_addresses(*addresses: str) -> Callable[[Render], None]:
    return metallb("IPAddressPool", lambda i: i["spec"].update(addresses=list(addresses)))


def setting(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda settings: settings.update({key: value})


def without(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda settings: settings.pop(key)


# (policy, stack, how to break the render, what the report says)
BREAKS = [
    pytest.param(
        "elasticsearch-tls",
        "dev",
        es_settings(setting("xpack.security.http.ssl.enabled", False)),
        "http.ssl.enabled",
        id="http tls off",
    ),
    pytest.param(
        "elasticsearch-tls",
        "staging",
        es_settings(setting("xpack.security.transport.ssl.enabled", False)),
        "transport.ssl.enabled",
        id="transport tls off (swarm config)",
    ),
    pytest.param(
        "elasticsearch-tls",
        "prod",
        es_settings(setting("xpack.security.enabled", False)),
        "xpack.security.enabled",
        id="security off (configmap)",
    ),
    pytest.param(
        "elasticsearch-tls",
        "dev",
        es_settings(without("xpack.security.http.ssl.key")),
        "no certificate and key",
        id="no http key",
    ),
    pytest.param(
        "elasticsearch-tls",
        "lab",
        es_settings(setting("xpack.security.transport.ssl.verification_mode", "none")),
        "verification_mode",
        id="transport unverified",
    ),
    pytest.param(
        "elasticsearch-tls",
        "dev",
        kibana_settings(setting("elasticsearch.hosts", ["http://dev-es-0:9200"])),
        "over https",
        id="kibana over http",
    ),
    pytest.param(
        "elasticsearch-tls",
        "prod",
        kibana_settings(without("elasticsearch.ssl.certificateAuthorities")),
        "cluster CA",
        id="kibana without CA",
    ),
    pytest.param(
        "no-plaintext-passwords",
        "dev",
        docker_env("dev-es-0", "ELASTIC_PASSWORD=changeme"),
        "env ELASTIC_PASSWORD",
        id="password in container env",
    ),
    pytest.param("no-plaintext-passwords", "staging", _swarm_env, "env ELASTIC_PASSWORD", id="password in service env"),
    pytest.param(
        "no-plaintext-passwords", "prod", _kibana_env, "env ELASTICSEARCH_PASSWORD", id="password as pod env value"
    ),
    pytest.param(
        "no-plaintext-passwords",
        "dev",
        kibana_settings(setting("elasticsearch.password", "changeme")),
        "elasticsearch.password in plain text",
        id="password in kibana.yml",
    ),
    pytest.param(
        "no-plaintext-passwords",
        "lab",
        kibana_settings(setting("xpack.security.encryptionKey", "k" * 32)),
        "encryptionKey in plain text",
        id="encryption key in kibana.yml",
    ),
    pytest.param(
        "elasticsearch-heap", "dev", set_heap("dev-es-0", "-Xms1536m -Xmx1536m"), "more than half", id="heap over half"
    ),
    pytest.param(
        "elasticsearch-heap", "dev", set_heap("dev-es-0", "-Xms512m -Xmx1g"), "differ", id="xms differs from xmx"
    ),
    pytest.param("elasticsearch-heap", "dev", _huge_heap, "above 31 GiB", id="heap above 31g"),
    pytest.param("elasticsearch-heap", "staging", _swarm_no_limit, "no memory limit", id="no memory limit (swarm)"),
    pytest.param(
        "elasticsearch-heap",
        "dev",
        lambda render: render.named("dev-es-0").inputs.pop("memory"),
        "no memory limit",
        id="no memory limit (container)",
    ),
    pytest.param(
        "elasticsearch-heap",
        "prod",
        k8s_es_container(lambda c: c["resources"]["limits"].update(memory="3Gi")),
        "more than half",
        id="pod limit too small",
    ),
    pytest.param("elasticsearch-pdb", "prod", drop_pdb, "no PodDisruptionBudget", id="no pdb"),
    pytest.param(
        "elasticsearch-pdb",
        "prod",
        pdb(lambda p: p.inputs["spec"]["selector"]["matchLabels"].update(app="other")),
        "no PodDisruptionBudget",
        id="pdb selects other pods",
    ),
    pytest.param(
        "elasticsearch-pdb",
        "prod",
        pdb(lambda p: p.inputs["metadata"].update(namespace="other")),
        "no PodDisruptionBudget",
        id="pdb in another namespace",
    ),
    pytest.param(
        "metallb-references",
        "prod",
        metallb("L2Advertisement", lambda i: i["spec"].update(ipAddressPools=["first-pool", "typo-pool"])),
        "typo-pool, which is no pool",
        id="advertisement names no pool",
    ),
    pytest.param(
        "metallb-references",
        "prod",
        add_unannounced_pool,
        "second-pool is announced by no advertisement",
        id="pool announced nowhere",
    ),
    pytest.param(
        "metallb-references",
        "prod",
        es_service(lambda i: i["metadata"]["annotations"].update({"metallb.io/address-pool": "typo-pool"})),
        "typo-pool, which does not exist",
        id="service asks a missing pool",
    ),
    pytest.param(
        "metallb-references",
        "prod",
        es_service(lambda i: i["metadata"]["annotations"].update({"metallb.io/loadBalancerIPs": "192.168.1.251"})),
        "192.168.1.251 lies in no pool",
        id="fixed ip outside the pool",
    ),
    pytest.param(
        "no-plaintext-passwords",
        "prod",
        _configmap_password,
        "env ELASTICSEARCH_PASSWORD comes from a configMapKeyRef",
        id="password from a configmap",
    ),
    pytest.param(
        "pod-disruption-budget",
        "prod",
        pdb(lambda p: p.inputs["spec"]["selector"].update(matchLabels={})),
        "matchLabels names no label",
        id="pdb with an empty selector",
    ),
    pytest.param(
        "pod-disruption-budget",
        "prod",
        pdb(lambda p: p.inputs["spec"]["selector"].update(matchExpressions=[{"key": "app", "operator": "Exists"}])),
        "by matchExpressions",
        id="pdb selecting by expressions",
    ),
    pytest.param(
        "pod-disruption-budget",
        "prod",
        pdb(lambda p: p.inputs["spec"].update(maxUnavailable=0)),
        "allows no voluntary disruption",
        id="pdb blocking every drain",
    ),
    pytest.param(
        "metallb-objects",
        "prod",
        pool_addresses("192.168.1.250-192.168.1.240"),
        "neither a CIDR nor a start-end range",
        id="pool range backwards",
    ),
    pytest.param(
        "metallb-objects",
        "prod",
        pool_addresses("192.168.1.0/24", "192.168.1.128/25"),
        "overlaps another address",
        id="pool addresses overlap",
    ),
    pytest.param("metallb-objects", "prod", pool_addresses(), "no addresses", id="pool without addresses"),
    pytest.param(
        "metallb-objects",
        "prod",
        metallb("IPAddressPool", lambda i: i["metadata"].pop("name")),
        "no metadata.name",
        id="pool without a name",
    ),
    pytest.param(
        "metallb-objects",
        "prod",
        metallb("L2Advertisement", lambda i: i["spec"].update(ipAddressPools=["first-pool", "first-pool"])),
        "names first-pool twice",
        id="advertisement names a pool twice",
    ),
    pytest.param(
        "metallb-objects",
        "prod",
        es_service(lambda i: i["metadata"]["annotations"].update({"metallb.io/loadBalancerIPs": "192.168.1.300"})),
        "192.168.1.300 is not an IP address",
        id="fixed ip that is no address",
    ),
]


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize(("policy", "stack", "edit", "message"), BREAKS)
def test_the_policy_catches(policy: str, stack: str, edit: Callable[[Render], None], message: str, run: str) -> None:
    """In a first preview too: the values it does not know (a CA beside kibana.yml in its ConfigMap,
    certificates beside a container's settings) cost the policy nothing it can judge."""
    findings = judge(broken(RUNS[run](stack), edit))
    caught = [f for f in findings if f.policy == policy and message in f.message]
    assert caught and all(f.level == MANDATORY for f in findings), "\n".join(map(str, findings))


@pytest.mark.parametrize(
    ("stack", "name"),
    [("dev", "dev-es-0"), ("dev", "dev-kibana-0"), ("staging", "staging-es-0"), ("prod", "prod-kibana-config")],
)
def test_the_first_preview_breaks_land_beside_unknown_values(stack: str, name: str) -> None:
    """The breaks above edit these resources, which hold values a first preview does not know."""
    assert unknown_paths(first_preview(stack).named(name).inputs)
    assert not unknown_paths(rendered(stack).named(name).inputs)


def test_claims_are_all_tested() -> None:
    """Each policy of the pack has at least one break above that it catches."""
    assert {case.values[0] for case in BREAKS} == set(BY_NAME)
