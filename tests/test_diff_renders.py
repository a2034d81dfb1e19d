"""The diff on real renders (the program under the mock runtime), one change per case of issue 13:
a rotated password, a new CA, a memory-only change and a scale-in each give the right line, on the
target where it matters (Docker, Swarm, Kubernetes)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection
from typing import Any

from review.diff import StackDiff, diff_stack
from review.documents import SECRET_MARK, documents, dump, load
from review.report import markdown
from tests.harness import PROJECT, read_stack_config, render

Edit = Callable[[dict[str, Any]], None]


def rendered(stack: str, config: dict[str, Any], secret_keys: list[str], renewed: Collection[str] = ()) -> Any:
    result = render(stack, config, secret_keys=secret_keys, renewed=renewed)
    return result, load(dump(documents(result)))


def diff_after(
    stack: str, edit: Edit, renewed: Collection[str] = (), secret_keys: list[str] | None = None
) -> StackDiff:
    """The diff from the stack as its file is to the stack with `edit` applied to its config."""
    base_config = read_stack_config(stack)
    head_config = copy.deepcopy(base_config)
    edit(head_config)
    _, base = rendered(stack, base_config, secret_keys or [])
    _, head = rendered(stack, head_config, secret_keys or [], renewed)
    return diff_stack(stack, base, head)


def node_group(**changes: Any) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        config[f"{PROJECT}:cluster"]["node_groups"][0].update(changes)

    return edit


def test_a_rotated_password_shows_as_a_new_digest_and_never_as_text() -> None:
    security = f"{PROJECT}:security"
    old, new = "configured-elastic-pw-1", "rotated-elastic-pw-2"

    def with_password(password: str) -> Edit:
        return lambda config: config.update({security: {"elastic_password": password}})

    base_config, head_config = read_stack_config("dev"), read_stack_config("dev")
    with_password(old)(base_config)
    with_password(new)(head_config)
    _, base = rendered("dev", base_config, [security])
    _, head = rendered("dev", head_config, [security])
    diff = diff_stack("dev", base, head)
    (output,) = [f for f in diff.outputs if f.path == "outputs.elastic_password"]
    assert SECRET_MARK.match(output.before) and SECRET_MARK.match(output.after) and output.before != output.after
    assert any(c.name == "dev-setup" for c in diff.changes), "the setup step that sets the password shows"
    report = markdown("t", [diff])
    assert f"+ outputs.elastic_password: {output.after}" in report
    assert old not in report and new not in report


def test_a_new_ca_shows_in_the_kubernetes_secret_that_holds_it() -> None:
    """The CA reaches the pods only through a Secret: before digests, its change showed nowhere there."""
    diff = diff_after("prod", lambda config: None, renewed={"prod-certs-ca"})
    (secret,) = [c for c in diff.changes if c.name == "prod-es-certs"]
    assert "inputs.stringData.ca.crt" in [f.path for f in secret.fields]
    # Its provider updates a Secret's data in place (enableSecretMutable); Kibana's bundle, a ConfigMap on
    # the default provider, is replaced (a new name: Kibana's pods roll).
    assert secret.action == "update"
    assert [c.action for c in diff.changes if c.name == "prod-kibana-config"] == ["replace"]


def test_a_memory_only_change_on_docker_updates_the_container_in_place() -> None:
    diff = diff_after("dev", node_group(memory="3g", heap="1g"))  # the heap stays at the default 1g
    (change,) = diff.changes
    assert (change.name, change.action, change.es_node_impact) == ("dev-es-0", "update", None)
    assert {f.path for f in change.fields} == {"inputs.memory", "inputs.memorySwap"}
    report = markdown("t", [diff])
    assert "- inputs.memory: 2048\n+ inputs.memory: 3072" in report and ":warning:" not in report


def test_a_heap_change_on_docker_replaces_each_node() -> None:
    diff = diff_after("lab", node_group(heap="1g"))
    nodes = [c for c in diff.changes if c.type == "docker:index/container:Container" and c.es_node_impact]
    assert [c.name for c in nodes] == ["lab-es-0", "lab-es-1", "lab-es-2"]
    assert all(c.action == "replace" and "inputs.envs" in str(c.es_node_impact) for c in nodes)


def test_a_heap_change_on_swarm_restarts_each_task() -> None:
    diff = diff_after("staging", node_group(heap="1g"))
    restarted = [c.name for c in diff.changes if c.action == "update (restarts node)"]
    assert restarted == ["staging-es-0", "staging-es-1", "staging-es-2"]
    assert {c.name for c in diff.es_node_warnings()} == set(restarted)


def test_a_scale_in_on_kubernetes_names_the_removed_node() -> None:
    diff = diff_after("prod", node_group(count=2))
    (statefulset,) = [c for c in diff.changes if c.name == "prod-es" and c.type == "kubernetes:apps/v1:StatefulSet"]
    assert statefulset.action.startswith("update (removes nodes prod-es-2")
    assert str(statefulset.es_node_impact).startswith("removes nodes prod-es-2 (replicas 3 → 2)")
    report = markdown("t", [diff])
    assert "**Elasticsearch nodes:** `prod-es` (kubernetes:apps/v1:StatefulSet) removes nodes prod-es-2" in report
    assert "- inputs.spec.replicas: 3\n+ inputs.spec.replicas: 2" in report


def test_a_kibana_memory_change_is_a_replacement_because_the_program_asks_for_one() -> None:
    """pulumi-docker would update a container's memory in place, but Kibana's containers carry
    `replaceOnChanges: ["*"]` (a container whose health wait timed out must be made anew): the diff
    follows the engine, which replaces on a matching path."""
    diff = diff_after("dev", lambda c: c.update({f"{PROJECT}:kibana": {"memory": "2g"}}))
    (kibana,) = [c for c in diff.changes if c.name == "dev-kibana-0"]
    assert kibana.action == "replace"
