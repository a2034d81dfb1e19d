"""Changes to a formed cluster, as render pairs (the first `up`'s outputs as the stack's last state): the
dependency graph lets at most one Elasticsearch node restart at a time, in Elastic's order, each behind a
gate; only the nodes a change touches run their prepare and gate; removed nodes are drained first.

Pulumi's engine runs a resource's step only after the steps of the resources it depends on (its
registration waits for them), so a chain in the graph is a sequence in time. A cluster task runs when it
is created or when one of its inputs changes (pulumi-command), so a task whose inputs are the same in
both renders does not run.
"""

from __future__ import annotations

import copy
import itertools
import shlex
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from escluster.changes import rollout_order
from tests import rules, rules_swarm
from tests.conftest import rendered
from tests.harness import PROJECT, Registration, Render, read_stack_config, render

CLUSTER = f"{PROJECT}:cluster"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
DOCKER_STACKS = ["dev", "lab", "compose3", "mixed", "lab-groups", "staging", "swarm-groups"]


def edited(stack: str, edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    config = copy.deepcopy(read_stack_config(stack))
    if edit:
        edit(config)
    return config


def formed(stack: str, edit: Callable[[dict[str, Any]], None] | None = None, **kwargs: Any) -> Render:
    """The render of a change made to the cluster the stack's first `up` formed."""
    return render(stack, edited(stack, edit), previous=formed_state(stack), **kwargs)


def formed_state(stack: str) -> Mapping[str, Any]:
    """The outputs after the second `up` (the bootstrap dropped), as the next change finds them."""
    return second(stack).outputs


_SECOND: dict[str, Render] = {}


def second(stack: str) -> Render:
    if stack not in _SECOND:
        _SECOND[stack] = render(stack, edited(stack), previous=rendered(stack).outputs)
    return _SECOND[stack]


def nodes(result: Render) -> dict[str, Registration]:
    """The ES node workloads by node name: containers, swarm services."""
    found = {c.name: c for c in rules.es_containers(result)} if result.of_type(rules.CONTAINER) else {}
    return found or {s.name: s for s in rules_swarm.es_services(result)}


def roles(result: Render) -> dict[str, list[str]]:
    state = result.outputs["cluster_state"]["nodes"]
    return {name: list(state[name]) for name in nodes(result)}


def task(result: Render, name: str) -> Registration | None:
    found = [c for c in result.of_type(rules.COMMAND) if c.name == name]
    return found[0] if found else None


def ancestors(result: Render, resource: Registration) -> set[str]:
    by_urn, seen, todo = result.by_urn(), set(), list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        if urn in by_urn:
            todo += by_urn[urn].dependencies
        todo += [r.urn for r in result.resources if r.parent == urn]
    return seen


def check_one_at_a_time(result: Render) -> list[str]:
    """The nodes in the order the graph runs them; asserts each waits for the gate of the one before,
    which waits for that node, and that masters come last."""
    order = rollout_order(roles(result))
    by_name = nodes(result)
    for earlier, later in itertools.pairwise(order):
        gate = task(result, f"{earlier}-gate")
        assert gate is not None, f"no gate after {earlier}"
        assert by_name[earlier].urn in ancestors(result, gate), f"the gate of {earlier} does not wait for it"
        assert gate.urn in ancestors(result, by_name[later]), f"{later} does not wait for the gate of {earlier}"
        prepare = task(result, f"{later}-prepare")
        assert prepare is not None and prepare.urn in by_name[later].dependencies, f"{later} has no prepare before it"
    masters = [name for name in order if "master" in roles(result)[name]]
    assert order[len(order) - len(masters) :] == masters, f"masters are not last: {order}"
    return order


def runs(before: Render, after: Render, name: str) -> bool:
    """Whether the cluster task `name` runs on the way from `before` to `after` (created, or new inputs)."""
    old, new = task(before, name), task(after, name)
    assert new is not None, f"no task {name}"
    return old is None or old.inputs != new.inputs


def restarted(before: Render, after: Render) -> list[str]:
    """The nodes whose prepare and gate run: the ones the change restarts, in the order they go."""
    order = rollout_order(roles(after))
    gated = [name for name in order if runs(before, after, f"{name}-gate")]
    assert gated == [name for name in order if runs(before, after, f"{name}-prepare")]
    return gated


# ---- a new cluster starts at once, a formed one rolls ----------------------------------------------------


@pytest.mark.parametrize("stack", DOCKER_STACKS)
def test_a_new_cluster_starts_every_node_at_once(stack: str) -> None:
    result = rendered(stack)
    assert not [c for c in result.of_type(rules.COMMAND) if c.name.endswith(("-gate", "-prepare"))]
    assert rules.wait_chain_length(result) == 1


@pytest.mark.parametrize("stack", DOCKER_STACKS)
def test_a_formed_cluster_changes_one_node_at_a_time_masters_last(stack: str) -> None:
    order = check_one_at_a_time(second(stack))
    assert len(order) == len(nodes(second(stack)))


def test_the_first_up_after_forming_restarts_only_the_bootstrap_masters() -> None:
    """Dropping `cluster.initial_master_nodes` restarts the nodes that had it, one at a time."""
    first, following = rendered("lab-groups"), second("lab-groups")
    assert restarted_between(first, following) == ["labg-master-0", "labg-master-1", "labg-master-2"]


def restarted_between(first: Render, following: Render) -> list[str]:
    """On the first `up` after forming, the tasks are new: the restarted nodes are those whose spec changed."""
    specs_before = {name: rules.es_settings(c) for name, c in nodes(first).items() if rules.es_containers(first)}
    specs_after = {name: rules.es_settings(c) for name, c in nodes(following).items() if rules.es_containers(following)}
    return [name for name in rollout_order(roles(following)) if specs_before.get(name) != specs_after.get(name)]


# ---- each kind of change -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["lab", "lab-groups", "swarm-groups"])
def test_a_version_upgrade_rolls_every_node_as_an_upgrade(stack: str) -> None:
    after = formed(stack, lambda c: c[CLUSTER].update(version="9.6.0"))
    order = check_one_at_a_time(after)
    assert restarted(second(stack), after) == order
    for name in order:
        gate = task(after, f"{name}-gate")
        assert gate is not None
        step = shlex.split(rules.docker_argv(gate.inputs["create"])[-1].strip().splitlines()[-1])
        assert step[0] == "gate_node" and step[4] == "1", f"{name}: not gated as an upgrade ({step})"


@pytest.mark.parametrize("stack", ["lab", "staging"])
def test_a_heap_change_rolls_every_node(stack: str) -> None:
    after = formed(stack, lambda c: c[CLUSTER]["node_groups"][0].update(heap="1g"))
    assert restarted(second(stack), after) == check_one_at_a_time(after)


def test_a_settings_change_of_one_group_restarts_that_group_only() -> None:
    def more_roles(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"][1]["roles"] = ["data", "ingest", "ml"]

    after = formed("lab-groups", more_roles)
    assert restarted(second("lab-groups"), after) == ["labg-data-0", "labg-data-1", "labg-data-2"]


def test_a_renewed_certificate_restarts_its_node_only() -> None:
    after = formed("lab-groups", renewed={"labg-data-1-cert"})
    assert restarted(second("lab-groups"), after) == ["labg-data-1"]


def test_a_scale_out_restarts_nothing_and_gates_the_new_node() -> None:
    def more_data(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"][1]["count"] = 4

    after = formed("lab-groups", more_data)
    assert restarted(second("lab-groups"), after) == ["labg-data-3"], "only the new node's tasks run"
    check_one_at_a_time(after)
    assert task(after, "labg-rolling-drain") is None


def test_a_data_node_is_drained_before_it_is_removed() -> None:
    def fewer_data(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"][1]["count"] = 2

    after = formed("lab-groups", fewer_data)
    drain = task(after, "labg-rolling-drain")
    assert drain is not None
    script = rules.docker_argv(drain.inputs["create"])[-1]
    assert "drain_node labg-data-2 0 " in script and "labg-data-1" not in script.split("drain_node", 1)[1]
    assert restarted(second("lab-groups"), after) == []
    assert "labg-data-2" not in nodes(after)
    # Everything else waits for the drain; Pulumi deletes the removed node after every step of the run.
    baseline = task(after, "labg-rolling-health-before")
    assert baseline is not None and drain.urn in ancestors(after, baseline)
    # This run excludes the leaving node first; the next one keeps it excluded only while it is still listed.
    exclusions = task(after, "labg-rolling-exclusions")
    assert exclusions is not None and exclusions.urn in ancestors(after, drain)
    assert "wanted=labg-data-2\n" in rules.docker_argv(exclusions.inputs["create"])[-1]
    following = render("lab-groups", edited("lab-groups", fewer_data), previous=after.outputs)
    exclusions = task(following, "labg-rolling-exclusions")
    assert exclusions is not None
    script = rules.docker_argv(exclusions.inputs["create"])[-1]
    assert "wanted=''\n" in script and "for name in labg-data-2; do" in script


def test_a_master_leaves_the_voting_configuration_before_it_is_removed() -> None:
    def masters(count: int) -> Callable[[dict[str, Any]], None]:
        return lambda c: c[CLUSTER]["node_groups"][0].update(count=count)

    five = edited("lab-groups", masters(5))
    formed_five = render("lab-groups", five, previous=render("lab-groups", five).outputs)
    after = render("lab-groups", edited("lab-groups", masters(4)), previous=formed_five.outputs)
    drain = task(after, "labg-rolling-drain")
    assert drain is not None and "drain_node labg-master-4 1 " in rules.docker_argv(drain.inputs["create"])[-1]
    # The next run clears the voting exclusions once the master is no longer listed.
    exclusions = task(
        render("lab-groups", edited("lab-groups", masters(4)), previous=after.outputs), "labg-rolling-exclusions"
    )
    assert exclusions is not None
    script = rules.docker_argv(exclusions.inputs["create"])[-1]
    assert 'for name in labg-master-4; do\n  printf \'%s\\n\' "$present" | grep -qx "$name" && voters_leaving' in script


def test_an_unchanged_stack_runs_no_task() -> None:
    again = formed("lab-groups")
    assert restarted(second("lab-groups"), again) == []
    assert not runs(second("lab-groups"), again, "labg-rolling-health-before")


# ---- Kubernetes: one pod at a time across every StatefulSet ----------------------------------------------


def roll(result: Render) -> Registration | None:
    return next((c for c in result.of_type(rules.COMMAND) if c.name.endswith("-rolling-roll")), None)


def test_a_new_kubernetes_cluster_starts_every_pod_at_once() -> None:
    for stack in ("prod", "k8s-groups", "k8s-metallb"):
        assert roll(rendered(stack)) is None
        for sts in rendered(stack).of_type(STATEFULSET):
            assert sts.inputs["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_a_kubernetes_version_upgrade_rolls_pods_one_at_a_time_masters_last() -> None:
    before = second("k8s-groups")
    after = formed("k8s-groups", lambda c: c[CLUSTER].update(version="9.6.0"))
    task_ = roll(after)
    assert task_ is not None and roll(before) is not None
    assert task_.inputs["environment"] != roll(before).inputs["environment"], "the roll would not run"  # type: ignore[union-attr]
    assert {sts.urn for sts in after.of_type(STATEFULSET)} <= set(task_.dependencies)
    script = task_.inputs["create"]
    line = next(line for line in script.splitlines() if line.startswith("for sts in "))
    assert line == "for sts in kg-data kg-coord kg-master; do"
    assert 'gate_node "$pod" "$status" "$unassigned" 1 ' in script


def test_an_unchanged_kubernetes_stack_does_not_roll() -> None:
    assert roll(formed("k8s-groups")).inputs == roll(second("k8s-groups")).inputs  # type: ignore[union-attr]


def test_kubernetes_drains_before_the_statefulset_shrinks() -> None:
    after = formed("k8s-groups", lambda c: c[CLUSTER]["node_groups"][1].update(count=1))
    drain = next(c for c in after.of_type(rules.COMMAND) if c.name.endswith("-rolling-drain"))
    assert "drain_node kg-data-1 0 " in drain.inputs["create"]
    shrunk = after.named("kg-data")
    assert shrunk.inputs["spec"]["replicas"] == 1 and drain.urn in shrunk.dependencies


def test_a_change_outside_the_settings_still_goes_through_each_nodes_gate() -> None:
    """Swarm updates a service for its placement as for anything else, which restarts its task: the
    data nodes moved to other racks restart one at a time behind their gates."""

    def move_data(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"][1]["placement"] = ["rack=r2", "rack=r3", "rack=r1"]

    after = formed("swarm-groups", move_data)
    assert restarted(second("swarm-groups"), after) == ["swg-data-0", "swg-data-1", "swg-data-2"]


def test_a_gate_runs_again_whenever_its_prepare_did() -> None:
    """A reverted change runs the prepare again (its spec is new again) and holds the replicas: the gate,
    which takes the prepare's output, must release them even if the node's own inputs match its state."""
    after = formed("swarm-groups", lambda c: c[CLUSTER].update(version="9.6.0"))
    gate = task(after, "swg-data-0-gate")
    prepare = task(after, "swg-data-0-prepare")
    assert gate is not None and prepare is not None
    assert prepare.urn in gate.dependencies or prepare.urn in ancestors(after, gate)
    assert "ES_NODE_PREPARED" in gate.inputs["environment"]


KIBANA_WORKLOADS = ("docker:index/container:Container", "docker:index/service:Service", "kubernetes:apps/v1:Deployment")


def kibana_workloads(result: Render) -> list[Registration]:
    return [
        r for kind in KIBANA_WORKLOADS for r in result.of_type(kind) if "kibana" in r.name and "image" not in r.name
    ]


@pytest.mark.parametrize("stack", ["lab-groups", "swarm-groups", "k8s-groups"])
def test_kibana_changes_after_the_elasticsearch_roll(stack: str) -> None:
    """Elastic's upgrade order: Elasticsearch, then Kibana (Kibana refuses a node on an older minor, elastic/
    kibana es_kibana_version_compatability.ts). On a formed cluster Kibana waits for the last gate or the
    roll; on a new one it starts with the nodes."""
    after = formed(stack, lambda c: c[CLUSTER].update(version="9.6.0"))
    last = [c for c in after.of_type(rules.COMMAND) if c.name.endswith(("-gate", "-rolling-roll"))]
    assert last and kibana_workloads(after)
    for kibana in kibana_workloads(after):
        assert {c.urn for c in last} <= ancestors(after, kibana) | {kibana.urn}, kibana.name
    for kibana in kibana_workloads(rendered(stack)):
        assert not any(
            r.name.endswith(("-gate", "-rolling-roll"))
            for r in rendered(stack).resources
            if r.urn in ancestors(rendered(stack), kibana)
        )
