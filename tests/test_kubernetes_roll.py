"""The Kubernetes roll (escluster/rolling.py `kubernetes_roll_script`) as the stack renders it, run against
a stand-in `kubectl` (tests/fake_kubectl.py) and the fake Elasticsearch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from escluster.rolling import ALLOCATION_ENABLE
from escluster.security import ADMIN_USER
from tests import rules
from tests.fake_es import FakeCluster
from tests.fake_kubectl import run_kubectl_script
from tests.harness import PROJECT, Render, read_stack_config, render, render_failure
from tests.test_rolling import second

PODS = {
    "kg-data-0": "old",
    "kg-data-1": "old",
    "kg-coord-0": "new",
    "kg-master-0": "old",
    "kg-master-1": "old",
    "kg-master-2": "old",
}


def upgraded() -> Render:
    config = read_stack_config("k8s-groups")
    config[f"{PROJECT}:cluster"] = {**config[f"{PROJECT}:cluster"], "version": "9.6.0"}
    return render("k8s-groups", config, previous=second("k8s-groups").outputs)


def roll_command(result: Render) -> dict[str, Any]:
    command = next(c for c in result.of_type(rules.COMMAND) if c.name.endswith("-rolling-roll"))
    return command.inputs


def run_roll(tools: Path, fake: FakeCluster, *, never_ready: tuple[str, ...] = ()) -> tuple[int, str, dict[str, Any]]:
    statefulsets = {"kg-data": 2, "kg-coord": 1, "kg-master": 3}
    return run_kubectl_script(tools, fake, roll_command(upgraded()), PODS, statefulsets, never_ready=never_ready)


def cluster(**fields: Any) -> FakeCluster:
    nodes = list(PODS)
    return FakeCluster(users={ADMIN_USER: ("admin-pw", "superuser")}, nodes=nodes, **fields)


def test_the_roll_restarts_old_pods_one_at_a_time_masters_last(tools: Path) -> None:
    fake = cluster()
    code, stderr, state = run_roll(tools, fake)
    assert code == 0, stderr
    assert state["deleted"] == ["kg-data-1", "kg-data-0", "kg-master-2", "kg-master-1", "kg-master-0"]
    # Replicas held before each restart, released after it: never two pods down at once.
    holds = [value for key, value in fake.history if key == ALLOCATION_ENABLE]
    assert holds == ["primaries", None] * 5
    assert fake.flushes == 5


def test_the_roll_stops_at_a_pod_after_which_the_cluster_stays_yellow(tools: Path) -> None:
    code, stderr, state = run_roll(tools, _yellow_after_first_restart(cluster(green_after=None)))
    assert code == 1
    assert "after kg-data-1 restarted, the cluster did not get back to its health before the change (green" in stderr
    assert "the cluster is yellow" in stderr
    assert state["deleted"] == ["kg-data-1"], "a further pod was restarted"


def _yellow_after_first_restart(fake: FakeCluster) -> FakeCluster:
    """A cluster that turns yellow, with a shard initializing, once the roll first changes a setting."""
    original = fake.health

    def health() -> dict[str, Any]:
        if fake.history:
            fake.status = "yellow"
            fake.initializing = 1
        return original()

    fake.health = health  # type: ignore[method-assign]
    return fake


def test_the_roll_stops_at_a_pod_that_never_comes_back(tools: Path) -> None:
    code, stderr, state = run_roll(tools, cluster(), never_ready=("kg-data-1",))
    assert code == 1 and "kg-data-1 did not come back ready" in stderr
    assert state["deleted"] == ["kg-data-1"]


def test_the_roll_touches_nothing_on_a_red_cluster(tools: Path) -> None:
    fake = cluster(formed=False)
    code, stderr, state = run_roll(tools, fake)
    assert code == 1 and "not restarting kg-data-1" in stderr and "the cluster is red" in stderr
    assert state["deleted"] == []


def kubectl_lines(result: Render) -> list[str]:
    """Every kubectl target of the program's local commands (the `K=` of a preamble, MetalLB's steps)."""
    found = []
    for command in result.of_type(rules.COMMAND):
        lines = str(command.inputs.get("create", "")).splitlines()
        found += [line for line in lines if re.search(r"(^K=|\$\(|\| |^)'?kubectl ", line.strip())]
    return found


def test_kubectl_follows_the_providers_own_context_and_kubeconfig() -> None:
    """Without `kubernetes.context`, the default provider reads `kubernetes:context` and
    `kubernetes:kubeconfig`; the roll, drain and MetalLB steps must go to that same cluster."""
    config = read_stack_config("k8s-metallb")
    config[f"{PROJECT}:kubernetes"] = {k: v for k, v in config[f"{PROJECT}:kubernetes"].items() if k != "context"}
    config |= {"kubernetes:context": "site-b", "kubernetes:kubeconfig": "/etc/kube/site-b.yaml"}
    first = render("k8s-metallb", config)
    after = render("k8s-metallb", config, previous=render("k8s-metallb", config, previous=first.outputs).outputs)
    lines = kubectl_lines(after) + kubectl_lines(first)
    assert lines and all("kubectl --kubeconfig /etc/kube/site-b.yaml --context site-b" in line for line in lines), lines
    adopting = next(p for p in after.resources if p.name == "kubernetes-namespace")
    assert adopting.inputs["context"] == "site-b" and adopting.inputs["kubeconfig"] == "/etc/kube/site-b.yaml"


def test_kubeconfig_contents_in_the_provider_config_are_refused() -> None:
    config = read_stack_config("prod") | {"kubernetes:kubeconfig": "apiVersion: v1\nkind: Config\nclusters: []\n"}
    error, partial = render_failure("prod", config)
    assert "kubernetes:kubeconfig holds a kubeconfig's contents" in str(error)
    assert partial.resources == []


def test_a_single_pod_cluster_rolls(tools: Path) -> None:
    """The pod being restarted is the only one: the steps before its deletion still ask it."""

    def one_pod(config: dict[str, Any]) -> None:
        config[f"{PROJECT}:cluster"]["node_groups"] = [
            {"name": "one", "count": 1, "roles": ["master", "data", "ingest"], "memory": "2g", "storage": "5Gi"}
        ]

    config = read_stack_config("k8s-groups")
    config[f"{PROJECT}:cluster"] = dict(config[f"{PROJECT}:cluster"])
    one_pod(config)
    first = render("k8s-groups", config)
    formed_ = render("k8s-groups", config, previous=first.outputs)
    upgraded_config = {**config, f"{PROJECT}:cluster": {**config[f"{PROJECT}:cluster"], "version": "9.6.0"}}
    roll = roll_command(render("k8s-groups", upgraded_config, previous=formed_.outputs))
    fake = FakeCluster(users={ADMIN_USER: ("admin-pw", "superuser")}, nodes=["kg-one-0"])
    code, output, state = run_kubectl_script(tools, fake, roll, {"kg-one-0": "old"}, {"kg-one": 1})
    assert code == 0, output
    assert state["deleted"] == ["kg-one-0"]
    assert [value for key, value in fake.history if key == ALLOCATION_ENABLE] == ["primaries", None]


def test_the_roll_stops_when_kubectl_cannot_read_a_statefulset(tools: Path) -> None:
    """A wrong context or missing RBAC must not pass for "nothing to restart"."""
    code, output, _ = run_kubectl_script(tools, cluster(), roll_command(upgraded()), PODS, {"kg-data": 2})
    assert code == 1 and "could not read StatefulSet kg-coord" in output
