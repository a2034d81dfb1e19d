"""The Kubernetes roll (escluster/rolling.py `kubernetes_roll_script`) as the stack renders it, run against
a stand-in `kubectl` (tests/fake_kubectl.py) and the fake Elasticsearch."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from components.kubernetes.objects import SKIP_AWAIT_ANNOTATION
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


def test_the_roll_waits_for_the_controller_to_see_the_new_template(tools: Path) -> None:
    """pulumi-kubernetes returns once the StatefulSet is written; until its controller has observed that
    generation, `status.updateRevision` still names the old template, and every pod would look current
    (kubernetes/kubernetes pkg/controller/statefulset/stateful_set_control.go: updateStatefulSetStatus
    sets observedGeneration with updateRevision)."""
    statefulsets = {"kg-data": 2, "kg-coord": 1, "kg-master": 3}
    code, output, state = run_kubectl_script(
        tools, cluster(), roll_command(upgraded()), PODS, statefulsets, extra={"lag": {"kg-data": 3}}
    )
    assert code == 0, output
    assert state["statefulsets"]["kg-data"]["lag_polls"] == 0 and state["deleted"][0] == "kg-data-1"


def test_the_roll_stops_before_any_pod_when_the_controller_never_catches_up(tools: Path) -> None:
    statefulsets = {"kg-data": 2, "kg-coord": 1, "kg-master": 3}
    code, output, state = run_kubectl_script(
        tools, cluster(), roll_command(upgraded()), PODS, statefulsets, extra={"lag": {"kg-data": 10**6}}
    )
    assert code == 1 and "has not seen kg-data's latest spec" in output
    assert state["deleted"] == []


def test_a_pod_not_created_yet_is_waited_for_not_restarted(tools: Path) -> None:
    """Scale-out and roll in one run: the new ordinal does not exist when the roll reads it."""
    pods = {name: rev for name, rev in PODS.items() if name != "kg-data-1"}
    statefulsets = {"kg-data": 2, "kg-coord": 1, "kg-master": 3}
    fake = cluster()
    code, output, state = run_kubectl_script(tools, fake, roll_command(upgraded()), pods, statefulsets)
    assert code == 1 and "kg-data-1 is not ready and in the cluster" in output
    assert "kg-data-1" not in state["deleted"] and state["deleted"][0] == "kg-data-0"


def test_a_kubeconfig_path_with_spaces_reaches_kubectl_as_one_argument(tools: Path) -> None:
    """The scripts keep kubectl's words in a bash array; run the rendered roll's own `K=(…)` line with
    bash and read back the words a kubectl would get."""
    path = "/home/o'neil/kube configs/site b.yaml"
    config = read_stack_config("k8s-groups")
    config |= {"kubernetes:kubeconfig": path}
    formed_ = render("k8s-groups", config, previous=render("k8s-groups", config).outputs)
    upgraded_config = {**config, f"{PROJECT}:cluster": {**config[f"{PROJECT}:cluster"], "version": "9.6.0"}}
    script = roll_command(render("k8s-groups", upgraded_config, previous=formed_.outputs))["create"]
    array_line = next(line for line in script.splitlines() if line.startswith("K=("))
    words = subprocess.run(
        ["bash", "-c", f'{array_line}\nprintf "%s\\n" "${{K[@]}}"'], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert words[:3] == ["kubectl", "--kubeconfig", path]


def test_a_formed_clusters_statefulsets_are_not_awaited_so_a_bad_change_can_be_undone() -> None:
    """pulumi-kubernetes waits for a StatefulSet's rollout unless `pulumi.com/skipAwait` is set
    (provider/pkg/await/await.go: skipAwait; statefulset.go waits for updatedReplicas == replicas). With
    OnDelete nothing rolls until our roll deletes a pod, and a pod broken by a change would fail every
    later `up` — the one that undoes the change too. A new cluster's first `up` still waits."""
    first = rendered_k8s_groups()
    assert all(
        SKIP_AWAIT_ANNOTATION not in (s.inputs["metadata"].get("annotations") or {}) for s in statefulsets(first)
    )
    after = upgraded()
    assert statefulsets(after) and all(
        s.inputs["metadata"]["annotations"][SKIP_AWAIT_ANNOTATION] == "true" for s in statefulsets(after)
    )


def test_a_new_pods_claim_is_patched_only_after_the_roll_waited_for_it() -> None:
    """The claim of a pod added to a formed cluster does not exist until its pod does; a patch before would
    fail (or create a claim the StatefulSet controller then adopts at the patch's size only)."""
    config = read_stack_config("k8s-groups")
    groups = config[f"{PROJECT}:cluster"]["node_groups"]
    more = [{**g, "count": g["count"] + 1} if g["name"] == "data" else g for g in groups]
    scaled = {**config, f"{PROJECT}:cluster": {**config[f"{PROJECT}:cluster"], "node_groups": more}}
    after = render("k8s-groups", scaled, previous=second("k8s-groups").outputs)
    roll = next(c for c in after.of_type(rules.COMMAND) if c.name.endswith("-rolling-roll"))
    patches = {p.name: p for p in after.of_type("kubernetes:core/v1:PersistentVolumeClaimPatch")}
    assert roll.urn in patches["data-kg-data-2"].dependencies
    assert roll.urn not in patches["data-kg-data-0"].dependencies


def rendered_k8s_groups() -> Render:
    return render("k8s-groups", read_stack_config("k8s-groups"))


def statefulsets(result: Render) -> list[Any]:
    return result.of_type("kubernetes:apps/v1:StatefulSet")


def test_a_pod_a_change_broke_is_restarted_first_and_holds_back_the_other_masters(tools: Path) -> None:
    """The change that undoes a broken one: the old-revision pod that is out (not ready, not in the
    cluster) goes first, as in ECK; before it is back no healthy master may restart (one_master_at_a_time,
    cloud-on-k8s driver/stateful/upgrade_predicates.go), or two of three voters would be out."""
    fake = cluster(absent_for={"kg-master-1": 10**6})
    statefulsets = {"kg-data": 2, "kg-coord": 1, "kg-master": 3}
    code, output, state = run_kubectl_script(
        tools, fake, roll_command(upgraded()), PODS, statefulsets, unready=("kg-master-1",)
    )
    assert code == 0, output
    assert state["deleted"] == ["kg-master-1", "kg-data-1", "kg-data-0", "kg-master-2", "kg-master-0"]


def test_a_healthy_master_is_not_restarted_while_another_is_out(tools: Path) -> None:
    """kg-master-1 is out but already on the new revision (it broke for another reason): the roll stops
    before touching another master."""
    fake = cluster(absent_for={"kg-master-1": 10**6})
    pods = PODS | {"kg-master-1": "new"}
    statefulsets = {"kg-data": 2, "kg-coord": 1, "kg-master": 3}
    code, output, state = run_kubectl_script(
        tools, fake, roll_command(upgraded()), pods, statefulsets, unready=("kg-master-1",)
    )
    assert code == 1 and "not restarting kg-master-2: master-eligible kg-master-1 not in the cluster" in output
    assert "kg-master-2" not in state["deleted"] and "kg-master-0" not in state["deleted"]
