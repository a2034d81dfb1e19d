"""The plan alone (no Pulumi): discovery, bootstrap, heap and TLS rules over random valid topologies."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from escluster.config import StackConfig
from escluster.plan import ClusterPlan, build_plan
from escluster.sections import MAX_HEAP_BYTES, Role
from escluster.units import GIB, MIB

ROOT = Path(__file__).resolve().parent.parent
ROLE_SETS = [
    ["master", "data", "ingest"],
    ["master"],
    ["master", "voting_only"],
    ["data"],
    ["data_hot", "ingest"],
    ["ingest", "ml", "transform", "remote_cluster_client"],
    [],
]


@st.composite
def stack_configs(draw: st.DrawFn) -> StackConfig:
    group_count = draw(st.integers(1, 4))
    names = draw(
        st.lists(
            st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True),
            min_size=group_count,
            max_size=group_count,
            unique=True,
        )
    )
    groups: list[dict[str, Any]] = []
    for name in names:
        memory_gib = draw(st.integers(1, 80))
        heap = draw(st.one_of(st.none(), st.integers(256, memory_gib * 512).map(lambda mib: f"{mib}m")))
        if heap is not None and int(heap[:-1]) * MIB > MAX_HEAP_BYTES:
            heap = None
        groups.append(
            {
                "name": name,
                "count": draw(st.integers(0, 5)),
                "roles": draw(st.sampled_from(ROLE_SETS)),
                "memory": f"{memory_gib}g",
                "heap": heap,
            }
        )
    # Every valid cluster has a node that can become master.
    groups[0]["roles"] = ["master", "data"]
    groups[0]["count"] = max(groups[0]["count"], 1)
    total = sum(g["count"] for g in groups)
    single = draw(st.sampled_from([None, False] + ([True] if total == 1 else [])))
    return StackConfig.model_validate(
        {
            "cluster": {
                "name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)),
                "node_groups": groups,
                "single_node": single,
            },
        }
    )


def names(plan: ClusterPlan) -> list[str]:
    return [n.name for n in plan.nodes]


@settings(max_examples=200, deadline=None)
@given(stack_configs())
def test_discovery_and_bootstrap_rules(config: StackConfig) -> None:
    plan = build_plan(config)
    node_names = names(plan)
    assert len(set(node_names)) == len(node_names) == config.cluster.node_count
    masters = [n.name for n in plan.nodes if "master" in n.roles]
    assert any("master" in n.roles and "voting_only" not in n.roles for n in plan.nodes)
    bootstrap_lists = set()
    for node in plan.nodes:
        s = node.settings
        assert s["cluster.name"] == config.cluster.name
        assert s["node.name"] == node.name
        if s.get("discovery.type") == "single-node":
            assert len(plan.nodes) == 1
            assert "cluster.initial_master_nodes" not in s
            assert "discovery.seed_hosts" not in s
            continue
        seeds = s["discovery.seed_hosts"]
        assert isinstance(seeds, list) and seeds
        assert set(seeds) <= set(node_names), "every seed host is a real node"
        if "cluster.initial_master_nodes" in s:
            assert "master" in node.roles
            initial = s["cluster.initial_master_nodes"]
            assert isinstance(initial, list)
            assert len(set(initial)) == len(initial)
            assert set(initial) <= set(masters)
            bootstrap_lists.add(tuple(initial))
        else:
            assert "master" not in node.roles, "a master-eligible node of a new cluster lacks the bootstrap list"
    assert len(bootstrap_lists) <= 1
    if len(plan.nodes) > 1:
        assert bootstrap_lists == {tuple(masters)}


@settings(max_examples=200, deadline=None)
@given(stack_configs())
def test_single_node_mode_exactly_when_asked_or_alone(config: StackConfig) -> None:
    plan = build_plan(config)
    single = {n.settings.get("discovery.type") == "single-node" for n in plan.nodes}
    expected = config.cluster.single_node if config.cluster.single_node is not None else len(plan.nodes) == 1
    assert single == {expected}


@settings(max_examples=200, deadline=None)
@given(stack_configs())
def test_heap_is_fixed_at_most_half_the_limit_and_under_31g(config: StackConfig) -> None:
    for node in build_plan(config).nodes:
        xms, xmx = node.jvm_options.split()
        assert xms.removeprefix("-Xms") == xmx.removeprefix("-Xmx")
        assert node.heap_bytes * 2 <= node.memory_bytes
        assert node.heap_bytes <= 31 * GIB
        assert node.heap_bytes >= 256 * MIB


@settings(max_examples=100, deadline=None)
@given(stack_configs())
def test_tls_on_both_layers_with_the_node_own_files(config: StackConfig) -> None:
    for node in build_plan(config).nodes:
        s = node.settings
        assert s["xpack.security.enabled"] is True
        for layer in ("http", "transport"):
            assert s[f"xpack.security.{layer}.ssl.enabled"] is True
            assert s[f"xpack.security.{layer}.ssl.key"] == node.tls.key
            assert s[f"xpack.security.{layer}.ssl.certificate"] == node.tls.certificate
            assert s[f"xpack.security.{layer}.ssl.certificate_authorities"] == [node.tls.ca]
        assert node.tls.certificate.endswith(f"/certs/{node.name}/{node.name}.crt")
        assert node.tls.key.endswith(f"/certs/{node.name}/{node.name}.key")
        assert node.tls.ca.endswith("/certs/ca/ca.crt")
        assert node.name in node.dns_names and "localhost" in node.dns_names


def test_default_heap_is_half_the_memory_capped_at_31g() -> None:
    def heap(memory: str) -> int:
        config = StackConfig.model_validate(
            {"cluster": {"name": "c", "node_groups": [{"name": "g", "memory": memory}]}}
        )
        return build_plan(config).nodes[0].heap_bytes

    assert heap("2g") == GIB
    assert heap("3g") == 1536 * MIB
    assert heap("96g") == 31 * GIB


def test_scale_out_with_data_nodes_leaves_master_settings_alone() -> None:
    def plan(data_nodes: int) -> ClusterPlan:
        return build_plan(
            StackConfig.model_validate(
                {
                    "cluster": {
                        "name": "c",
                        "node_groups": [
                            {"name": "m", "count": 3, "roles": ["master"]},
                            {"name": "d", "count": data_nodes, "roles": ["data"]},
                        ],
                    }
                }
            )
        )

    before, after = plan(2), plan(5)
    for old in before.nodes:
        new = next(n for n in after.nodes if n.name == old.name)
        assert new.settings == old.settings


def test_voting_only_nodes_join_the_bootstrap_list() -> None:
    plan = build_plan(
        StackConfig.model_validate(
            {
                "cluster": {
                    "name": "c",
                    "node_groups": [
                        {"name": "m", "count": 2, "roles": ["master"]},
                        {"name": "tie", "count": 1, "roles": [Role.master, Role.voting_only]},
                    ],
                }
            }
        )
    )
    for node in plan.nodes:
        assert node.settings["cluster.initial_master_nodes"] == ["c-m-0", "c-m-1", "c-tie-0"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_config_and_plan_modules_stay_free_of_pulumi() -> None:
    # Only escluster/load.py reads Pulumi's config; everything else there is pure.
    modules = [path for path in (ROOT / "escluster").glob("*.py") if path.name != "load.py"]
    assert len(modules) >= 8
    for path in modules:
        assert not {m for m in imported_modules(path) if m.startswith("pulumi")}, f"{path.name} imports Pulumi"
