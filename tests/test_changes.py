"""Changes to a running cluster: what is refused before anything changes, and how a formed cluster
bootstraps no more (escluster/changes.py), through the real program with the stack's last outputs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from escluster.changes import major_upgrade_floor, rollout_order
from escluster.load import ConfigError
from tests import rules, rules_swarm
from tests.conftest import rendered
from tests.harness import PROJECT, Render, read_stack_config, render, render_failure

CLUSTER = f"{PROJECT}:cluster"


def edited(stack: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    config = copy.deepcopy(read_stack_config(stack))
    edit(config)
    return config


def formed(stack: str, edit: Callable[[dict[str, Any]], None] | None = None) -> Render:
    """The stack's render on its second `up` (the first one's outputs as the last state)."""
    return render(stack, edited(stack, edit or (lambda c: None)), previous=rendered(stack).outputs)


def refused(stack: str, edit: Callable[[dict[str, Any]], None], *fragments: str) -> None:
    error, partial = render_failure(stack, edited(stack, edit), previous=rendered(stack).outputs)
    assert isinstance(error, ConfigError), repr(error)
    assert "refused: the running cluster cannot take this change" in str(error)
    for fragment in fragments:
        assert fragment in str(error), str(error)
    assert partial.resources == [], "something was registered before the refusal"


# ---- bootstrap once, automatically --------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["lab", "compose3", "staging", "swarm-groups", "lab-groups"])
def test_the_second_up_bootstraps_no_node_and_keeps_the_seeds(stack: str) -> None:
    first, second = rendered(stack), formed(stack)
    first_settings = settings(first)
    for name, s in settings(second).items():
        assert "cluster.initial_master_nodes" not in s, f"{name} still bootstraps on a formed cluster"
        assert s["discovery.seed_hosts"] == first_settings[name]["discovery.seed_hosts"]
    assert any("cluster.initial_master_nodes" in s for s in first_settings.values())


def settings(result: Render) -> dict[str, dict[str, Any]]:
    if result.of_type(rules.CONTAINER) and rules.es_containers(result):
        return {c.name: rules.es_settings(c) for c in rules.es_containers(result)}
    return {s.name: rules_swarm.es_settings(result, s) for s in rules_swarm.es_services(result)}


def test_a_node_added_to_a_formed_cluster_never_bootstraps() -> None:
    result = formed("lab", lambda c: c[CLUSTER]["node_groups"].append({"name": "data", "count": 2, "roles": ["data"]}))
    for name, s in settings(result).items():
        assert "cluster.initial_master_nodes" not in s, name


def test_seeds_stay_while_one_of_them_is_a_master() -> None:
    """Removing one bootstrap master changes no other node's seeds."""
    first = rendered("lab-groups")
    result = render(
        "lab-groups",
        edited("lab-groups", lambda c: c[CLUSTER]["node_groups"][0].update(count=3)),
        previous=first.outputs,
    )
    assert {str(s["discovery.seed_hosts"]) for s in settings(result).values()} == {
        str(settings(first)["labg-master-0"]["discovery.seed_hosts"])
    }


def test_the_kubernetes_bootstrap_list_goes_once_formed() -> None:
    settings_file = next(
        r for r in formed("prod").of_type("kubernetes:core/v1:ConfigMap") if r.name == "prod-es-config"
    ).inputs["data"]["elasticsearch.yml"]
    assert "cluster.initial_master_nodes" not in settings_file


# ---- refused before anything changes -----------------------------------------------------------------


def test_a_downgrade_is_refused() -> None:
    refused(
        "lab", lambda c: c[CLUSTER].update(version="9.4.0"), "cluster.version: 9.4.0 is older than the running 9.5.2"
    )


@pytest.mark.parametrize(
    ("running", "wanted", "allowed"),
    [
        ("8.17.2", "9.0.0", False),
        ("8.18.3", "9.0.4", True),
        ("8.18.3", "9.1.0", False),
        ("8.19.4", "9.5.2", True),
        ("8.5.0", "8.19.4", True),
        ("9.0.1", "9.5.2", True),
    ],
)
def test_elastics_upgrade_paths(running: str, wanted: str, allowed: bool) -> None:
    first = render("lab", edited("lab", lambda c: c[CLUSTER].update(version=running)))
    upgrade = edited("lab", lambda c: c[CLUSTER].update(version=wanted))
    if allowed:
        render("lab", upgrade, previous=first.outputs)
        return
    error, _ = render_failure("lab", upgrade, previous=first.outputs)
    assert "upgrade the running" in str(error) and "first" in str(error)


def test_the_major_upgrade_floors() -> None:
    assert major_upgrade_floor((9, 0, 7)) == (8, 18, 0)
    assert major_upgrade_floor((9, 1, 0)) == (8, 19, 0)
    assert major_upgrade_floor((10, 0, 0)) is None


def test_removing_half_the_masters_at_once_is_refused() -> None:
    refused(
        "lab",
        lambda c: c[CLUSTER]["node_groups"][0].update(count=1, placement=["server1"]),
        "removes 2 of the 3 master-eligible nodes (lab-es-1, lab-es-2)",
    )


def test_taking_the_master_role_from_half_the_masters_is_refused() -> None:
    """Names unchanged, roles gone: the nodes leave the voting configuration just the same."""
    six_masters = edited("lab-groups", lambda c: c[CLUSTER]["node_groups"][1].update(roles=["master", "data"]))
    error, _ = render_failure(
        "lab-groups", edited("lab-groups", lambda c: None), previous=render("lab-groups", six_masters).outputs
    )
    assert isinstance(error, ConfigError)
    assert (
        "removes 3 of the 6 master-eligible nodes (labg-data-0, labg-data-1, labg-data-2), or their master role"
        in str(error)
    )


def test_going_from_three_masters_to_two_is_refused() -> None:
    refused(
        "lab-groups",
        lambda c: c[CLUSTER]["node_groups"][0].update(count=2),
        "leaves two master-eligible nodes",
        "holds the only vote",
    )


def test_removing_one_master_of_five_is_allowed() -> None:
    five = edited("lab-groups", lambda c: c[CLUSTER]["node_groups"][0].update(count=5))
    four = edited("lab-groups", lambda c: c[CLUSTER]["node_groups"][0].update(count=4))
    result = render("lab-groups", four, previous=render("lab-groups", five).outputs)
    assert "labg-master-4" not in [c.name for c in rules.es_containers(result)]


def test_adding_and_removing_data_nodes_at_once_is_refused() -> None:
    """A renamed data group: its shards would have nowhere to go but the nodes that stay."""

    def rename_data(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"][1]["name"] = "hot"

    refused(
        "lab-groups",
        rename_data,
        "adds data nodes (labg-hot-0, labg-hot-1, labg-hot-2) and removes others (labg-data-0, labg-data-1, "
        "labg-data-2) at once",
        "Add the new nodes with one `pulumi up`, remove the old ones with the next",
    )


def test_removing_the_last_data_node_is_refused() -> None:
    refused(
        "lab-groups", lambda c: c[CLUSTER]["node_groups"][1].update(count=0), "removes the last node with a data role"
    )


def test_a_node_losing_its_data_role_is_refused() -> None:
    refused(
        "lab-groups",
        lambda c: c[CLUSTER]["node_groups"][1].update(roles=["ingest"]),
        "labg-data-0 would lose its data role while holding shards",
    )


def test_a_new_stack_refuses_nothing() -> None:
    render("lab", edited("lab", lambda c: c[CLUSTER].update(version="8.5.0")))


def test_rollout_order_puts_masters_last() -> None:
    nodes = {"m-0": ("master",), "d-0": ("data",), "mv-0": ("master", "voting_only"), "c-0": ()}
    assert rollout_order(nodes) == ["d-0", "c-0", "m-0", "mv-0"]
