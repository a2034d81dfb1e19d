"""`review.diff.diff_stack` on small hand-made documents, one case per rule: secrets by digest, what
each provider does with a change (review/actions.py cites the upstream code of each rule), lists
compared as the engine reads them, and values printed with their path and natural type."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from review.diff import MISSING, FieldChange, ResourceChange, StackDiff, diff_stack
from review.documents import SECRET_MARK, masked
from review.mockrun import SECRET_SIG, SIG_KEY
from review.report import markdown

CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
ES_YML = "/usr/share/elasticsearch/config/elasticsearch.yml"


def doc(type_: str, name: str, inputs: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:s::p::parent$${type_}::{name}",
        "type": type_,
        "name": name,
        "custom": True,
        "provider": None,
        "options": {"dependsOn": [], "ignoreChanges": [], "replaceOnChanges": [], **options},
        "inputs": inputs,
    }


def es_container(**inputs: Any) -> dict[str, Any]:
    uploads = [{"file": ES_YML, "content": "cluster.name: c\n"}, {"file": "/certs/ca.crt", "content": "CA1\n"}]
    return doc(
        CONTAINER, "es-0", {"name": "es-0", "memory": 2048.0, "envs": ["A=1", "B=2"], "uploads": uploads, **inputs}
    )


def es_service(**inputs: Any) -> dict[str, Any]:
    task = {"containerSpec": {"image": "es:9", "configs": [{"fileName": ES_YML, "configId": "c1"}]}}
    base = {"name": "es-0", "mode": {"replicated": {"replicas": 1.0}}, "taskSpec": task, "labels": []}
    return doc(SERVICE, "es-0", {**base, **inputs})


def es_statefulset(replicas: float = 3.0, strategy: str = "OnDelete") -> dict[str, Any]:
    container = {"name": "es", "image": "es:9", "volumeMounts": [{"name": "config", "mountPath": ES_YML}]}
    spec = {
        "replicas": replicas,
        "serviceName": "es-headless",
        "updateStrategy": {"type": strategy},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storage": "50Gi"}}],
        "template": {"spec": {"containers": [container]}},
    }
    return doc(STATEFULSET, "es", {"metadata": {"name": "es", "namespace": "elastic"}, "spec": spec})


def one_change(base: dict[str, Any], head: dict[str, Any]) -> ResourceChange:
    (change,) = diff_stack("s", [base], [head]).changes
    return change


def edited(document: dict[str, Any], *path: str, value: Any) -> dict[str, Any]:
    """A copy of `document` with the value at `path` (keys; digits index lists) set."""
    copied = copy.deepcopy(document)
    target: Any = copied
    for step in path[:-1]:
        target = target[int(step)] if isinstance(target, list) else target[step]
    if isinstance(target, list):
        target[int(path[-1])] = value
    else:
        target[path[-1]] = value
    return copied


def secret(value: Any) -> dict[str, Any]:
    return {SIG_KEY: SECRET_SIG, "value": value}


# --- secrets: compared by digest, never shown


def test_a_rotated_secret_changes_its_digest_and_the_value_never_shows() -> None:
    before, after = masked({"password": secret("old-pw-1")}), masked({"password": secret("new-pw-2")})
    assert SECRET_MARK.match(before["password"]) and SECRET_MARK.match(after["password"])
    assert before != after and masked({"password": secret("old-pw-1")}) == before
    base = doc("command:local:Command", "setup", before)
    change = one_change(base, edited(base, "inputs", value=after))
    assert [f.path for f in change.fields] == ["inputs.password"]
    report = markdown("t", [diff_stack("s", [base], [edited(base, "inputs", value=after)])])
    assert f"- inputs.password: {before['password']}" in report and "old-pw-1" not in report
    assert "new-pw-2" not in report


def test_a_secret_mapping_keeps_its_keys_so_a_new_ca_names_its_entry() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nCA1\n-----END CERTIFICATE-----\n"
    before = masked({"stringData": secret({"ca.crt": pem, "node.key": "KEY"})})
    after = masked({"stringData": secret({"ca.crt": pem.replace("CA1", "CA2"), "node.key": "KEY"})})
    base = doc("kubernetes:core/v1:Secret", "certs", before)
    change = one_change(base, doc("kubernetes:core/v1:Secret", "certs", after))
    assert [f.path for f in change.fields] == ["inputs.stringData.ca.crt"]
    assert change.action == "replace"  # pulumi-kubernetes: .stringData is a forceNew field of a Secret
    assert "CA1" not in str(before) and "CA2" not in str(after) and "KEY" not in str(after)


# --- Docker containers: pulumi-docker updates some fields in place, replaces on the rest


def test_a_memory_only_change_updates_the_container_in_place() -> None:
    base = es_container(memorySwap=2048.0)
    change = one_change(base, es_container(memory=3072.0, memorySwap=3072.0))
    assert change.action == "update" and change.es_node_impact is None
    report = markdown("t", [diff_stack("s", [base], [es_container(memory=3072.0, memorySwap=3072.0)])])
    assert "- inputs.memory: 2048\n+ inputs.memory: 3072" in report
    assert ":warning:" not in report


def test_an_env_change_replaces_the_container_and_its_node() -> None:
    change = one_change(es_container(), es_container(envs=["A=1", "B=3"]))
    assert change.action == "replace"
    assert change.es_node_impact is not None and "inputs.envs" in change.es_node_impact


def test_a_healthcheck_change_is_in_place_but_never_reaches_the_container() -> None:
    change = one_change(es_container(), es_container(healthcheck={"interval": "5s"}))
    assert change.action == "update" and change.es_node_impact is None
    assert change.note is not None and "without changing the running container" in change.note


def test_replace_on_changes_and_a_new_provider_replace() -> None:
    forced = edited(es_container(), "options", "replaceOnChanges", value=["*"])
    assert one_change(forced, edited(forced, "inputs", "memory", value=4096.0)).action == "replace"
    moved = edited(es_container(), "provider", value="urn:pulumi:s::p::pulumi:providers:docker::other::id")
    assert one_change(es_container(), moved).action == "replace"


def test_an_option_only_change_updates_nothing_on_the_node() -> None:
    change = one_change(es_container(), edited(es_container(), "options", "protect", value=True))
    assert change.action == "update" and change.es_node_impact is None


# --- swarm services: updated in place; the task restarts when its spec changes


@pytest.mark.parametrize(
    ("inputs", "action", "restarts"),
    [
        ({"labels": [{"label": "team", "value": "search"}]}, "update", False),
        ({"updateConfig": {"parallelism": 2}}, "update", False),
        ({"endpointSpec": {"mode": "dnsrr"}}, "update (restarts node)", True),
        ({"mode": {"replicated": {"replicas": 0.0}}}, "update (removes node es-0)", True),
        ({"mode": {"replicated": {"replicas": 2.0}}}, "update (adds nodes: replicas 1 → 2)", False),
        ({"name": "es-renamed"}, "replace", True),
    ],
    ids=["labels", "update config", "endpoint spec", "scale to zero", "scale out", "name"],
)
def test_what_a_service_change_does(inputs: dict[str, Any], action: str, restarts: bool) -> None:
    change = one_change(es_service(), es_service(**inputs))
    assert change.action == action
    assert (change.es_node_impact is not None) == restarts, change.es_node_impact


def test_a_task_spec_change_restarts_the_task() -> None:
    change = one_change(
        es_service(), edited(es_service(), "inputs", "taskSpec", "containerSpec", "image", value="es:10")
    )
    assert change.action == "update (restarts node)"
    assert change.es_node_impact == "task restarts (task-spec change: inputs.taskSpec.containerSpec.image)"


# --- StatefulSets: pod template, immutable fields, replicas


def test_a_scale_in_names_the_nodes_it_removes() -> None:
    change = one_change(es_statefulset(3.0), es_statefulset(1.0))
    assert change.action == "update (removes nodes es-1, es-2)"
    assert change.es_node_impact == "removes nodes es-1, es-2 (replicas 3 → 1)"


def test_a_scale_in_with_a_template_change_shows_both() -> None:
    head = edited(es_statefulset(2.0), "inputs", "spec", "template", "spec", "containers", "0", "image", value="es:10")
    change = one_change(es_statefulset(3.0), head)
    assert change.action == "update (removes nodes es-2; restarts nodes)"
    assert change.es_node_impact is not None
    assert change.es_node_impact.startswith("removes nodes es-2 (replicas 3 → 2); pods restart one at a time")


def test_a_scale_out_adds_named_nodes_and_warns_of_nothing() -> None:
    change = one_change(es_statefulset(3.0), es_statefulset(5.0))
    assert change.action == "update (adds nodes es-3, es-4)" and change.es_node_impact is None


@pytest.mark.parametrize(
    ("strategy", "impact"),
    [("OnDelete", "pods restart one at a time (OnDelete)"), ("RollingUpdate", "rolling restart of every pod")],
)
def test_a_template_change_restarts_pods_as_the_update_strategy_says(strategy: str, impact: str) -> None:
    base = es_statefulset(strategy=strategy)
    head = edited(base, "inputs", "spec", "template", "spec", "containers", "0", "image", value="es:10")
    change = one_change(base, head)
    assert change.action == "update (restarts nodes)"
    assert change.es_node_impact == f"{impact} (pod-template change: inputs.spec.template.spec.containers[*].image)"


def test_an_immutable_field_replaces_every_pod_unless_ignored() -> None:
    base = es_statefulset()
    head = edited(base, "inputs", "spec", "serviceName", value="other")
    change = one_change(base, head)
    assert change.action == "replace" and "every pod stops at once" in str(change.es_node_impact)
    claims = edited(base, "inputs", "spec", "volumeClaimTemplates", "0", "spec", "storage", value="80Gi")
    assert one_change(base, claims).action == "replace"
    ignoring = edited(base, "options", "ignoreChanges", value=["spec.volumeClaimTemplates"])
    ignored = one_change(ignoring, edited(claims, "options", "ignoreChanges", value=["spec.volumeClaimTemplates"]))
    assert ignored.action == "none (ignoreChanges)" and ignored.es_node_impact is None
    assert all(f.ignored for f in ignored.fields)


def test_a_deleted_statefulset_names_every_node() -> None:
    (change,) = diff_stack("s", [es_statefulset(2.0)], []).changes
    assert (
        change.action == "delete" and change.es_node_impact == "deleted: its nodes es-0, es-1 leave the cluster at once"
    )


@pytest.mark.parametrize(
    ("type_", "inputs", "field", "value", "action"),
    [
        ("tls:index/selfSignedCert:SelfSignedCert", {"earlyRenewalHours": 720.0}, "earlyRenewalHours", 48.0, "update"),
        (
            "tls:index/selfSignedCert:SelfSignedCert",
            {"validityPeriodHours": 1.0},
            "validityPeriodHours",
            2.0,
            "replace",
        ),
        ("random:index/randomPassword:RandomPassword", {"length": 32.0}, "length", 40.0, "replace"),
        ("kubernetes:core/v1:ConfigMap", {"data": {"a": "1"}}, "data", {"a": "2"}, "replace"),
        ("kubernetes:core/v1:Service", {"spec": {"type": "ClusterIP"}}, "spec", {"type": "LoadBalancer"}, "update"),
        ("kubernetes:core/v1:Service", {"metadata": {"name": "a"}}, "metadata", {"name": "b"}, "replace"),
    ],
)
def test_other_providers(type_: str, inputs: dict[str, Any], field: str, value: Any, action: str) -> None:
    base = doc(type_, "r", inputs)
    assert one_change(base, edited(base, "inputs", field, value=value)).action == action


# --- lists as the engine reads them; values with their path and natural type


def test_depends_on_is_a_set_whose_items_print_distinctly() -> None:
    first, second = (f"urn:pulumi:s::p::parent$tls:index/privateKey:PrivateKey::key-{n}" for n in (1, 2))
    base = doc("command:local:Command", "c", {}, dependsOn=[first])
    assert diff_stack("s", [base], [edited(base, "options", "dependsOn", value=[first])]).changes == []
    head = edited(base, "options", "dependsOn", value=[second, first])
    change = one_change(base, head)
    assert change.fields == [FieldChange("options.dependsOn", MISSING, second)]
    report = markdown("t", [diff_stack("s", [base], [head])])
    assert "+ options.dependsOn: key-2 (tls:index/privateKey:PrivateKey)" in report


def test_container_envs_compare_as_a_set() -> None:
    assert diff_stack("s", [es_container()], [es_container(envs=["B=2", "A=1"])]).changes == []


def test_a_list_of_named_items_pairs_them_by_key() -> None:
    base = es_container()
    uploads = [{"file": "/new.yml", "content": "x: 1\n"}, *base["inputs"]["uploads"]]
    change = one_change(base, es_container(uploads=uploads))
    assert {f.path for f in change.fields} == {
        "inputs.uploads[file=/new.yml].content",
        "inputs.uploads[file=/new.yml].file",
    }
    assert all(f.before is MISSING for f in change.fields)


def test_a_reordered_keyed_list_is_a_change() -> None:
    """A pod's containers are an ordered list (a Kubernetes list, not a set): a new order is a change."""
    containers = [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]
    base = doc("kubernetes:apps/v1:Deployment", "d", {"spec": {"containers": containers}})
    change = one_change(base, doc("kubernetes:apps/v1:Deployment", "d", {"spec": {"containers": containers[::-1]}}))
    assert [f.path for f in change.fields] == ["inputs.spec.containers (order of name)"]


def test_values_print_in_their_natural_type() -> None:
    base = doc("kubernetes:apps/v1:Deployment", "d", {"a": 1.0, "b": "3000", "c": True, "d": None, "e": 0.5})
    head = doc("kubernetes:apps/v1:Deployment", "d", {"a": 2.0, "b": "4000", "c": False, "d": "x", "e": 1.5})
    report = markdown("t", [diff_stack("s", [base], [head])])
    for line in ("- inputs.a: 1", "+ inputs.a: 2", '- inputs.b: "3000"', "+ inputs.c: false", "- inputs.d: null"):
        assert f"\n{line}\n" in report, line
    assert "+ inputs.e: 1.5" in report and "2.0" not in report


def test_output_changes_carry_their_key_path() -> None:
    base = [{"type": "pulumi:pulumi:Stack", "outputs": {"state": {"nodes": ["a", "b"]}}}]
    head = [{"type": "pulumi:pulumi:Stack", "outputs": {"state": {"nodes": ["a"]}}}]
    diff = diff_stack("s", base, head)
    assert diff.outputs == [FieldChange("outputs.state.nodes[1]", "b", MISSING)]
    assert "- outputs.state.nodes[1]: b" in markdown("t", [diff])


def test_the_summary_counts_actions() -> None:
    diff = StackDiff(
        "s",
        [
            ResourceChange("added", "u1", "t", "a", action="create"),
            ResourceChange("changed", "u2", "t", "b", action="update (restarts node)"),
            ResourceChange("changed", "u3", "t", "c", action="replace"),
        ],
    )
    assert "1 to create, 1 to update, 1 to replace, 0 to delete" in markdown("t", [diff])


@pytest.mark.parametrize(
    ("mutable", "immutable", "action"), [(False, False, "replace"), (True, False, "update"), (True, True, "replace")]
)
def test_a_secrets_data_change_follows_its_providers_settings(mutable: bool, immutable: bool, action: str) -> None:
    """pulumi-kubernetes diff.go forceNewProperties: a Secret's data is forceNew unless the provider has
    enableSecretMutable and the Secret is not `immutable`."""
    provider = doc("pulumi:providers:kubernetes", "mutable", {"enableSecretMutable": "true"} if mutable else {})
    extra = {"immutable": True} if immutable else {}
    before = doc(
        "kubernetes:core/v1:Secret", "certs", {"metadata": {"name": "certs"}, "stringData": {"a": "1"}, **extra}
    )
    after = copy.deepcopy(before)
    after["inputs"]["stringData"]["a"] = "2"
    for secret in (before, after):
        secret["provider"] = f"{provider['urn']}::mutable-id"
    diff = diff_stack("s", [provider, before], [provider, after])
    (change,) = diff.changes
    assert change.action == action


def test_reordering_a_providers_set_is_no_change() -> None:
    """terraform-provider-docker declares `upload` (container) and `placement.constraints` (service) as
    TypeSet: the provider sees no change when only their order does."""
    before = es_container()
    after = copy.deepcopy(before)
    after["inputs"]["uploads"].reverse()
    assert diff_stack("s", [before], [after]).changes == []
    service = es_service(taskSpec={"containerSpec": {"image": "es:9"}, "placement": {"constraints": ["a==1", "b==2"]}})
    moved = copy.deepcopy(service)
    moved["inputs"]["taskSpec"]["placement"]["constraints"].reverse()
    assert diff_stack("s", [service], [moved]).changes == []
    moved["inputs"]["taskSpec"]["placement"]["constraints"].append("c==3")
    (change,) = diff_stack("s", [service], [moved]).changes
    assert [(f.before, f.after) for f in change.fields] == [(MISSING, "c==3")]


def test_a_secrets_type_change_replaces_it_even_on_a_mutable_provider() -> None:
    """diff.go forceNewProperties keeps `.type` for Secrets whatever enableSecretMutable says."""
    provider = doc("pulumi:providers:kubernetes", "mutable", {"enableSecretMutable": "true"})
    before = doc("kubernetes:core/v1:Secret", "certs", {"metadata": {"name": "certs"}, "type": "Opaque"})
    after = copy.deepcopy(before)
    after["inputs"]["type"] = "kubernetes.io/tls"
    for secret in (before, after):
        secret["provider"] = f"{provider['urn']}::mutable-id"
    (change,) = diff_stack("s", [provider, before], [provider, after]).changes
    assert change.action == "replace"
