"""The policy pack stays mandatory when a preview does not know a value.

pulumi-policy wraps a resource's properties in `unknown_checking_proxy`, which raises `UnknownValueError`
on reading a value the engine sent as unknown (pulumi_policy/proxy.py); the server turns that error into
one advisory "can't run policy ... during preview" and drops the rest of the policy
(pulumi_policy/policy.py: `_PolicyAnalyzerServicer.Analyze` and `AnalyzeStack`). These tests put unknowns
where a first preview has them and anywhere else a value could be one, and show that no policy stops.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from elastic_policy.disruption import PDB
from elastic_policy.metallb import ADVERTISEMENTS, POOL, SERVICE
from elastic_policy.policies import POLICIES
from elastic_policy.workloads import STATEFULSET
from tests.conftest import rendered
from tests.first_preview import UNKNOWN, first_preview, unknown_paths
from tests.harness import Registration, Render
from tests.policy_pack import MANDATORY, judge_resource, judge_stack

# The kinds the stack policies read (elastic_policy/disruption.py, metallb.py): an unknown elsewhere cannot
# reach them, so the test spends its time on these.
STACK_POLICY_TYPES = {STATEFULSET, PDB, POOL, SERVICE, *ADVERTISEMENTS}
LEVELS = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory"}


def test_reading_every_value_of_the_kibana_configmap_would_stop_a_policy() -> None:
    """Why the policies read by key: in a first preview the CA beside kibana.yml is unknown."""
    config_map = first_preview("prod").named("prod-kibana-config")
    assert unknown_paths(config_map.inputs) == ["data.ca.crt"]
    data = unknown_checking_proxy(config_map.inputs)["data"]
    with pytest.raises(UnknownValueError) as caught:
        dict(data)
    assert caught.value.message == "string value at .data.ca.crt can't be known during preview"
    assert "elasticsearch.hosts" in data["kibana.yml"]


# ---- any one value unknown ------------------------------------------------------------------------


def paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every value's path under `value`: leaves, lists and mappings alike."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield (*path, key)
        yield from paths(item, (*path, key))


def with_unknown(inputs: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(inputs)
    parent: Any = changed
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = UNKNOWN
    return changed


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "k8s-metallb"])
def test_no_single_unknown_value_stops_a_policy_or_makes_a_violation(stack: str) -> None:
    """Each value of each resource unknown in turn (as the engine would send it): every policy still runs
    to the end and finds nothing, because it skips just the judgement that needs the value."""
    resources = [r for r in rendered(stack).resources if r.custom]
    for index, resource in enumerate(resources):
        for path in paths(resource.inputs):
            changed = copy.copy(resource)
            changed.inputs = with_unknown(resource.inputs, path)
            stack_policies_read = changed.type in STACK_POLICY_TYPES
            findings = judge_resource(changed) + (
                judge_stack([*resources[:index], changed, *resources[index + 1 :]]) if stack_policies_read else []
            )
            assert not findings, f"{resource.name} {path}: " + "\n".join(map(str, findings))


# ---- the server itself ------------------------------------------------------------------------------


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(values)
    return result


def serve(render: Render) -> list[tuple[str, str, str]]:
    """(level, policy, message) of every diagnostic pulumi-policy's own server sends back for the render,
    given the resources as the engine sends them (`raw_inputs`: secrets still wrapped, unknowns as sentinels).
    The servicer is private, but it is exactly what `PolicyPack(...)` serves (policy.py `PolicyPack.__init__`);
    pulumi-policy is pinned in requirements, and the tests above cover the same ground through its public API."""
    server = _PolicyAnalyzerServicer("elastic-stack-rules", "0.1.0", list(POLICIES), EnforcementLevel.MANDATORY)
    resources = [
        analyzer_pb2.AnalyzerResource(type=r.type, name=r.name, urn=r.urn, properties=struct(r.raw_inputs))
        for r in render.resources
        if r.custom
    ]
    requests = [
        analyzer_pb2.AnalyzeRequest(type=r.type, name=r.name, urn=r.urn, properties=r.properties) for r in resources
    ]
    responses = [server.Analyze(request, None) for request in requests]  # type: ignore[no-untyped-call]
    stack = analyzer_pb2.AnalyzeStackRequest(resources=resources)
    responses.append(server.AnalyzeStack(stack, None))  # type: ignore[no-untyped-call]
    return [(LEVELS[d.enforcementLevel], d.policyName, d.message) for r in responses for d in r.diagnostics]


def edit_yaml(resource: Registration, key: str, **changes: Any) -> None:
    settings = yaml.safe_load(resource.raw_inputs["data"][key])
    settings.update(changes)
    resource.raw_inputs["data"][key] = yaml.safe_dump(settings)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_server_runs_every_policy_through_a_first_preview(stack: str) -> None:
    assert serve(first_preview(stack)) == []


def test_the_server_reports_violations_beside_unknowns_as_mandatory() -> None:
    """A first preview of prod with violations planted in what it knows: each is mandatory, none is lost."""
    render = copy.deepcopy(first_preview("prod"))
    kibana_config = render.named("prod-kibana-config")  # its ca.crt is unknown
    edit_yaml(kibana_config, "kibana.yml", **{"elasticsearch.hosts": ["http://prod-es-http:9200"]})
    edit_yaml(kibana_config, "kibana.yml", **{"elasticsearch.password": "changeme"})
    container = render.named("prod-es").raw_inputs["spec"]["template"]["spec"]["containers"][0]
    container["env"] += [{"name": "SEED", "value": UNKNOWN}, {"name": "ELASTIC_PASSWORD", "value": UNKNOWN}]
    container["resources"]["limits"]["memory"] = "3Gi"
    pool = render.named("prod-lb-first-pool").raw_inputs["spec"]
    pool["addresses"] += [UNKNOWN, "10.0.0.9-10.0.0.1"]
    diagnostics = serve(render)
    assert {level for level, _, _ in diagnostics} == {"mandatory"}, diagnostics
    planted = {
        ("elasticsearch-tls", "Kibana must reach Elasticsearch over https"),
        ("no-plaintext-passwords", "settings file holds elasticsearch.password in plain text"),
        ("no-plaintext-passwords", "env ELASTIC_PASSWORD holds a literal value"),
        ("elasticsearch-heap", "is more than half of the memory limit"),
        ("metallb-objects", "address 10.0.0.9-10.0.0.1 is neither a CIDR"),
    }
    for policy, message in planted:
        assert any(p == policy and message in m for _, p, m in diagnostics), (policy, message, diagnostics)


# ---- what each check does with an unknown value -------------------------------------------------------


def pod(env: Any, memory: Any = "4Gi") -> dict[str, Any]:
    es = {"name": "es", "env": env, "resources": {"limits": {"memory": memory}}}
    es["volumeMounts"] = [{"mountPath": "/usr/share/elasticsearch/config/elasticsearch.yml"}]
    return {"metadata": {"namespace": "es"}, "spec": {"template": {"spec": {"containers": [es]}}}}


UNKNOWN_CASES = [
    pytest.param(
        "kubernetes:core/v1:ConfigMap",
        {"data": {"ca.crt": UNKNOWN, "elasticsearch.yml": "cluster.name: c\nxpack.security.enabled: false\n"}},
        [
            "elasticsearch-tls: Elasticsearch settings must set xpack.security.enabled: true",
            "elasticsearch-tls: Elasticsearch settings must set xpack.security.http.ssl.enabled: true",
            "elasticsearch-tls: Elasticsearch settings must set xpack.security.transport.ssl.enabled: true",
        ],
        id="settings judged beside an unknown CA",
    ),
    pytest.param(
        "kubernetes:core/v1:ConfigMap",
        {"data": {"elasticsearch.yml": UNKNOWN}},
        [],
        id="unknown settings file: judged in the update",
    ),
    pytest.param(
        "kubernetes:apps/v1:StatefulSet",
        pod([{"name": "ES_PASSWORD", "value": UNKNOWN}]),
        ["no-plaintext-passwords: container es: env ES_PASSWORD holds a literal value"],
        id="unknown literal password: still a literal",
    ),
    pytest.param(
        "kubernetes:apps/v1:StatefulSet",
        pod([{"name": "ES_JAVA_OPTS", "value": "-Xms1g -Xmx2g"}], memory=UNKNOWN),
        ["elasticsearch-heap: Elasticsearch container es: -Xms and -Xmx differ"],
        id="unknown memory limit: heap bounds still judged",
    ),
    pytest.param(
        "kubernetes:apps/v1:StatefulSet",
        pod([{"name": "ES_JAVA_OPTS", "value": UNKNOWN}]),
        [],
        id="unknown heap options: judged in the update",
    ),
    pytest.param(
        "kubernetes:apps/v1:StatefulSet",
        pod(UNKNOWN, memory=None),
        ["elasticsearch-heap: Elasticsearch container es has no memory limit"],
        id="unknown env: the missing limit still judged",
    ),
    pytest.param(
        "docker:index/container:Container",
        {
            "name": "es-0",
            "envs": [UNKNOWN, "ELASTIC_PASSWORD=x"],
            "uploads": [{"file": "/x/elasticsearch.yml", "content": UNKNOWN}],
        },
        [
            "no-plaintext-passwords: container es-0: env ELASTIC_PASSWORD holds a literal value",
            "elasticsearch-heap: Elasticsearch container es-0 has no memory limit",
        ],
        id="docker env entry unknown beside a literal password",
    ),
]


@pytest.mark.parametrize(("resource_type", "props", "expected"), UNKNOWN_CASES)
def test_an_unknown_value_costs_only_its_own_judgement(
    resource_type: str, props: dict[str, Any], expected: list[str]
) -> None:
    resource = Registration(
        type=resource_type,
        name="r",
        urn="urn:r",
        id="",
        parent="",
        custom=True,
        inputs=props,
        secret_paths=set(),
        protect=False,
        retain_on_delete=False,
        delete_before_replace=False,
        dependencies=[],
        provider="",
    )
    findings = judge_resource(resource)
    reported = [f"{f.policy}: {f.message}" for f in findings]
    assert len(reported) == len(expected), reported
    assert all(text.startswith(prefix) for text, prefix in zip(reported, expected, strict=True)), reported
    assert all(f.level == MANDATORY for f in findings)
