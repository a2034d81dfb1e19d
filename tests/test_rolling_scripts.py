"""The gate, drain, cleanup and baseline scripts (escluster/rolling.py), run as the Elasticsearch image's
user in the container preamble against the fake Elasticsearch (tests/fake_es.py): a cluster that comes
back, one that never turns green, a node that never drains, one that never rejoins, and no cluster at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from escluster.changes import RemovedNode
from escluster.rolling import (
    ALLOCATION_ENABLE,
    ALLOCATION_EXCLUDE,
    LIBRARY,
    POLL_SECONDS,
    baseline_script,
    container_preamble,
    drain_script,
    exclusions_script,
    gate_script,
    lingering_nodes,
    prepare_script,
)
from escluster.scripts import curl_config_user
from escluster.security import ADMIN_USER
from tests.contracts.conditions import ELASTICSEARCH_USER, run_as
from tests.fake_es import FakeCluster, fake_elasticsearch

ADMIN_PASSWORD = "admin-password-1"
FAST = 2  # seconds a test lets a script wait before it gives up
TARGET = "9.5.2"  # the version a change goes to


@pytest.fixture
def run_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="escluster-rolling-"))
    directory.chmod(0o755)
    (directory / "files").mkdir()
    os.chown(directory / "files", 1000, 0)
    (directory / "files").chmod(0o700)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def cluster(**fields: object) -> FakeCluster:
    return FakeCluster(users={ADMIN_USER: (ADMIN_PASSWORD, "superuser")}, **fields)  # type: ignore[arg-type]


def fast(script: str) -> str:
    """The script, polling every tenth of a second instead of every five."""
    return script.replace(f"sleep {POLL_SECONDS}", "sleep 0.1")


def run(body: str, fake: FakeCluster | None, run_dir: Path) -> tuple[int, str, str]:
    """`body` after the container preamble and the library, as uid 1000:0, polling fast."""
    admin = curl_config_user(ADMIN_USER, ADMIN_PASSWORD)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(run_dir), "CURL_HOME": str(run_dir)}
    if fake is None:
        script = fast(container_preamble(["https://127.0.0.1:9"], str(run_dir / "files")) + LIBRARY + body)
        result = run_as(ELASTICSEARCH_USER, ["bash", "-c", script], env=env, stdin=admin + "no CA\n")
        return result.returncode, result.stdout, result.stderr
    with fake_elasticsearch(fake, ["node-0"], run_dir) as server:
        script = fast(container_preamble([f"https://localhost:{server.port}"], str(run_dir / "files")) + LIBRARY + body)
        result = run_as(ELASTICSEARCH_USER, ["bash", "-c", script], env=env, stdin=admin + server.ca_pem)
    return result.returncode, result.stdout, result.stderr


def test_baseline_reports_the_status_and_unassigned_shards(run_dir: Path) -> None:
    code, out, _ = run(baseline_script(), cluster(status="yellow", unassigned=4), run_dir)
    assert code == 0 and out.strip() == "yellow 4"


def test_baseline_of_a_red_cluster_lets_only_absent_nodes_change(run_dir: Path) -> None:
    code, out, err = run(baseline_script(), cluster(status="red", unassigned=2), run_dir)
    assert code == 0 and out.strip() == "red 2"
    assert "only nodes that are not in the cluster change" in err


def test_baseline_when_no_node_answers(run_dir: Path) -> None:
    code, out, err = run(baseline_script(), None, run_dir)
    assert code == 0 and out.strip().splitlines()[-1] == "none -" and "no node answered" in err


def test_prepare_keeps_replicas_in_place_and_flushes(run_dir: Path) -> None:
    fake = cluster(nodes=["node-1"])
    code, _, _ = run(prepare_script("node-1", "", TARGET), fake, run_dir)
    assert code == 0
    assert fake.settings[ALLOCATION_ENABLE] == "primaries" and fake.flushes == 1


def test_prepare_prints_a_new_line_each_time_so_its_gate_runs_again(run_dir: Path) -> None:
    """The gate takes the prepare's output as an input: a prepare that ran again (a reverted change) must
    make its gate run again, or allocation would stay at primaries."""
    outputs = {run(prepare_script("node-1", "", TARGET), cluster(nodes=["node-1"]), run_dir)[1] for _ in range(2)}
    assert len(outputs) == 2


def test_prepare_refuses_a_node_of_a_red_cluster(run_dir: Path) -> None:
    fake = cluster(nodes=["node-1"], status="red")
    code, _, err = run(prepare_script("node-1", "", TARGET), fake, run_dir)
    assert code == 1 and "not restarting node-1" in err and "the cluster is red" in err
    assert fake.history == [] and fake.flushes == 0


def test_a_node_not_in_the_cluster_changes_whatever_the_health(run_dir: Path) -> None:
    """How a broken change is undone: a node the cluster answers without may change even on a red cluster
    (ECK's rolling upgrade deletes pods that are not ready without waiting)."""
    fake = cluster(nodes=["node-0"], status="red")
    code, out, err = run(prepare_script("node-1", "", TARGET), fake, run_dir)
    assert code == 0, err
    assert "node-1 is not in the cluster" in out and fake.history == []


def test_when_nothing_answers_only_a_node_shown_down_changes(run_dir: Path) -> None:
    """A single node that is down (dev): nothing answers, and its own address refuses the connection."""
    code, out, err = run(prepare_script("node-0", "https://127.0.0.1:9", TARGET), None, run_dir)
    assert code == 0, err
    assert "no node answers and node-0 is down" in out


def test_a_node_whose_state_cannot_be_told_is_left_alone(run_dir: Path) -> None:
    """No answer on the node list (an election, a refused credential) is no evidence the node is out."""
    fake = cluster(nodes=["node-1"], cat_nodes_status=503)
    with fake_elasticsearch(fake, ["node-1"], run_dir) as server:
        script = fast(
            container_preamble([server.url], str(run_dir / "files"))
            + LIBRARY
            + prepare_script("node-1", server.url, TARGET)
        )
        admin = curl_config_user(ADMIN_USER, ADMIN_PASSWORD)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(run_dir), "CURL_HOME": str(run_dir)}
        result = run_as(ELASTICSEARCH_USER, ["bash", "-c", script], env=env, stdin=admin + server.ca_pem)
    assert result.returncode == 1 and "not restarting it" in result.stderr
    assert fake.history == []


def test_prepare_waits_for_moving_shards_before_restarting_a_node(run_dir: Path) -> None:
    """A node rejoined after a red baseline, or a yellow cluster still recovering: the next restart waits."""
    moving = cluster(nodes=["node-1"], status="yellow", initializing=2)
    code, _, err = run(prepare_script("node-1", "", TARGET, timeout_seconds=FAST), moving, run_dir)
    assert code == 1 and "shards are still moving" in err and moving.history == []
    settled = cluster(nodes=["node-1"], status="yellow", initializing=0, green_after=None)
    code, _, err = run(prepare_script("node-1", "", TARGET, timeout_seconds=FAST), settled, run_dir)
    assert code == 0, err


def test_the_gate_waits_for_the_node_and_green_then_reenables_allocation(run_dir: Path) -> None:
    fake = cluster(
        nodes=["node-0", "node-1"],
        status="yellow",
        initializing=1,
        green_after=3,
        absent_for={"node-1": 2},
        settings={ALLOCATION_ENABLE: "primaries"},
    )
    code, out, err = run(gate_script("node-1", "green 0", upgrade=False), fake, run_dir)
    assert code == 0, err
    assert "node-1 is back: the cluster is green" in out
    assert ALLOCATION_ENABLE not in fake.settings
    assert fake.history == [(ALLOCATION_ENABLE, None)], "allocation was re-enabled before the node rejoined"


def test_the_gate_stops_the_roll_on_a_cluster_that_never_turns_green(run_dir: Path) -> None:
    fake = cluster(nodes=["node-0", "node-1"], status="yellow", green_after=None)
    code, _, err = run(gate_script("node-1", "green 0", upgrade=False, timeout_seconds=FAST), fake, run_dir)
    assert code == 1
    assert "after node-1 restarted, the cluster did not get back to its health before the change (green" in err
    assert "the cluster is yellow (2 nodes" in err and "No further node was changed" in err


def test_an_upgrade_goes_on_when_yellow_shards_stay_put(run_dir: Path) -> None:
    """During a version upgrade, replicas of upgraded primaries cannot go to older nodes: yellow with no
    initializing or relocating shard is as good as it gets until the last data node is upgraded."""
    fake = cluster(nodes=["node-0", "node-1"], status="yellow", green_after=None, unassigned=5)
    code, _, err = run(gate_script("node-1", "green 0", upgrade=True, timeout_seconds=FAST), fake, run_dir)
    assert code == 0, err
    moving = cluster(nodes=["node-0", "node-1"], status="yellow", green_after=None, relocating=2)
    code, _, _ = run(gate_script("node-1", "green 0", upgrade=True, timeout_seconds=FAST), moving, run_dir)
    assert code == 1


def test_a_yellow_baseline_asks_for_no_more_unassigned_shards_than_before(run_dir: Path) -> None:
    """Right after allocation is back, the restarted node's replicas may not have started recovering:
    yellow with nothing moving is not enough, the unassigned shards must be back to the baseline's."""
    same = cluster(nodes=["node-0"], status="yellow", green_after=None, unassigned=2)
    code, _, err = run(gate_script("node-0", "yellow 2", upgrade=False, timeout_seconds=FAST), same, run_dir)
    assert code == 0, err
    more = cluster(nodes=["node-0"], status="yellow", green_after=None, unassigned=3)
    code, _, err = run(gate_script("node-0", "yellow 2", upgrade=False, timeout_seconds=FAST), more, run_dir)
    assert code == 1 and "(yellow, 2 unassigned shards)" in err


def test_the_gate_asks_for_languid_events(run_dir: Path) -> None:
    """Health is read once the master has no pending task (the reroute after allocation came back)."""
    fake = cluster(nodes=["node-0"])
    run(gate_script("node-0", "green 0", upgrade=False), fake, run_dir)
    health = [r for r in fake.requests if r.path == "/_cluster/health" and r.query]
    assert health and all(r.query.get("wait_for_events") == ["languid"] for r in health)


def test_after_a_red_baseline_the_gate_waits_for_the_node_only(run_dir: Path) -> None:
    fake = cluster(nodes=["node-0", "node-1"], status="red", absent_for={"node-1": 2})
    code, _, err = run(gate_script("node-1", "red 3", upgrade=False, timeout_seconds=FAST), fake, run_dir)
    assert code == 0, err


def test_the_gate_names_a_node_that_never_rejoins(run_dir: Path) -> None:
    fake = cluster(nodes=["node-0", "node-1"], absent_for={"node-1": 10_000})
    code, _, err = run(gate_script("node-1", "green 0", upgrade=False, timeout_seconds=FAST), fake, run_dir)
    assert code == 1 and "node-1 did not rejoin the cluster within" in err
    assert ALLOCATION_ENABLE not in [key for key, _ in fake.history]


def test_the_gate_fails_on_an_unreachable_cluster(run_dir: Path) -> None:
    code, _, err = run(gate_script("node-1", "none -", upgrade=False, timeout_seconds=FAST), None, run_dir)
    assert code == 1 and "no node answered" in err


def test_settings_writes_are_retried_while_the_master_is_busy(run_dir: Path) -> None:
    fake = cluster(nodes=["node-1"], busy=2)
    code, _, err = run(prepare_script("node-1", "", TARGET), fake, run_dir)
    assert code == 0, err
    assert fake.settings[ALLOCATION_ENABLE] == "primaries" and fake.busy == 0


def test_drain_moves_the_shards_off_then_leaves_the_voting_configuration(run_dir: Path) -> None:
    fake = cluster(nodes=["node-0", "node-1", "node-2"], shards={"node-1": 3, "node-2": 4}, drain_per_poll=2)
    code, out, err = run(drain_script([RemovedNode("node-1", True, True)]), fake, run_dir)
    assert code == 0, err
    assert fake.shards["node-1"] == 0 and fake.shards["node-2"] == 4
    assert fake.settings[ALLOCATION_EXCLUDE] == "node-1"
    assert fake.voting_exclusions == ["node-1"]
    assert "node-1 holds no shard" in out


def test_drain_keeps_earlier_exclusions_and_goes_one_node_at_a_time(run_dir: Path) -> None:
    fake = cluster(
        nodes=["a", "b", "c"], shards={"b": 1, "c": 1}, settings={ALLOCATION_EXCLUDE: "old"}, drain_per_poll=1
    )
    code, _, err = run(drain_script([RemovedNode("b", False, True), RemovedNode("c", False, True)]), fake, run_dir)
    assert code == 0, err
    assert [value for key, value in fake.history if key == ALLOCATION_EXCLUDE] == ["old,b", "old,b,c"]
    assert fake.voting_exclusions == []


def test_drain_stops_on_a_node_that_never_drains(run_dir: Path) -> None:
    fake = cluster(nodes=["node-0", "node-1"], shards={"node-1": 3}, drain_per_poll=0)
    code, _, err = run(drain_script([RemovedNode("node-1", False, True)], timeout_seconds=FAST), fake, run_dir)
    assert code == 1 and "node-1 still holds 3 shards" in err and "it stays excluded and is not removed" in err


def exclusions(leaving: list[RemovedNode], lingering: list[RemovedNode], fake: FakeCluster, run_dir: Path) -> str:
    code, out, err = run(exclusions_script(leaving, lingering), fake, run_dir)
    assert code == 0, err
    return out


def test_exclusions_hold_exactly_the_nodes_leaving(run_dir: Path) -> None:
    """As ECK's: the program owns exclude._name; a name left from an earlier drain, or set before, goes."""
    fake = cluster(nodes=["a", "b"], settings={ALLOCATION_EXCLUDE: "x,old"}, voting_exclusions=["old"])
    out = exclusions([RemovedNode("b", False, True)], [], fake, run_dir)
    assert fake.settings[ALLOCATION_EXCLUDE] == "b" and fake.voting_exclusions == []
    assert lingering_nodes(out) == ()


def test_with_nothing_leaving_every_exclusion_goes(run_dir: Path) -> None:
    """A node that comes back under a drained name, or a reverted removal, is excluded no more."""
    fake = cluster(nodes=["a", "b"], settings={ALLOCATION_EXCLUDE: "b"}, voting_exclusions=["b"])
    exclusions([], [], fake, run_dir)
    assert ALLOCATION_EXCLUDE not in fake.settings and fake.voting_exclusions == []
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert deletes and deletes[0].query == {"wait_for_removal": ["false"]}, "a hand-set exclusion would block"


def test_a_removed_node_still_listed_stays_excluded_and_is_remembered(run_dir: Path) -> None:
    """Pulumi deletes removed nodes after every other step; one it could not delete keeps its exclusions
    (and, a master, the voting ones), and the next state names it again."""
    fake = cluster(nodes=["a", "m"], settings={ALLOCATION_EXCLUDE: "m"}, voting_exclusions=["m"])
    out = exclusions([], [RemovedNode("m", True, True), RemovedNode("gone", False, True)], fake, run_dir)
    assert fake.settings[ALLOCATION_EXCLUDE] == "m" and fake.voting_exclusions == ["m"]
    assert "m was removed but is still in the cluster" in out and lingering_nodes(out) == ("m",)


def test_a_master_leaving_keeps_the_voting_exclusions(run_dir: Path) -> None:
    fake = cluster(nodes=["a", "m"], voting_exclusions=["m"])
    exclusions([RemovedNode("m", True, True)], [], fake, run_dir)
    assert fake.voting_exclusions == ["m"] and fake.settings[ALLOCATION_EXCLUDE] == "m"


def test_exclusions_change_nothing_when_the_settings_cannot_be_read(run_dir: Path) -> None:
    fake = cluster(nodes=["a"], settings={ALLOCATION_EXCLUDE: "b,x"}, settings_unreadable=True)
    code, _, err = run(exclusions_script([], [RemovedNode("b", False, True)]), fake, run_dir)
    assert code == 1 and "could not read the cluster settings" in err
    assert fake.history == [], "the exclusions were written without being read"


def test_exclusions_change_nothing_when_the_nodes_cannot_be_listed(run_dir: Path) -> None:
    fake = cluster(nodes=["a"], settings={ALLOCATION_EXCLUDE: "b"}, cat_nodes_status=503)
    code, _, err = run(exclusions_script([], [RemovedNode("b", False, True)]), fake, run_dir)
    assert code == 1 and "could not list the cluster's nodes; no exclusion was changed" in err
    assert fake.history == []


def test_no_node_restarts_onto_an_older_version_than_one_already_runs(run_dir: Path) -> None:
    """A failed upgrade leaves some nodes on the new version, which the state does not know; going back
    would restart them onto a version Elasticsearch refuses to start (NodeMetadata
    verifyUpgradeToCurrentVersion: "cannot downgrade a node")."""
    fake = cluster(nodes=["node-0", "node-1"], node_versions={"node-0": "9.6.0", "node-1": "9.5.2"})
    code, _, err = run(prepare_script("node-1", "", TARGET), fake, run_dir)
    assert code == 1 and "node-0 already run a version newer than 9.5.2" in err
    assert fake.history == [], "replicas were held for a restart that must not happen"
    fake = cluster(nodes=["node-0", "node-1"], node_versions={"node-0": "9.10.0"})
    code, _, err = run(prepare_script("node-1", "", "9.9.1"), fake, run_dir)
    assert code == 1 and "node-0 already run a version newer than 9.9.1" in err, "versions compare as numbers"
    code, _, err = run(prepare_script("node-1", "", "9.10.0"), fake, run_dir)
    assert code == 0, err


def test_a_healthy_master_waits_while_another_master_is_out(run_dir: Path) -> None:
    """With one of three masters out, restarting a second loses the quorum; the cluster reads green all the
    same (masters hold no shards). ECK's one_master_at_a_time predicate, upgrade_predicates.go."""
    fake = cluster(nodes=["m-0", "m-2"])
    code, _, err = run(prepare_script("m-2", "", TARGET, ["m-0", "m-1"]), fake, run_dir)
    assert code == 1 and "master-eligible m-1 not in the cluster" in err and "Bring m-1 back first" in err
    assert fake.history == []
    # The master that is out is the one to change.
    code, out, err = run(prepare_script("m-1", "", TARGET, ["m-0", "m-2"]), fake, run_dir)
    assert code == 0 and "m-1 is not in the cluster" in out, err
    fake = cluster(nodes=["m-0", "m-1", "m-2"])
    code, _, err = run(prepare_script("m-2", "", TARGET, ["m-0", "m-1"]), fake, run_dir)
    assert code == 0, err


def test_exclusions_release_replicas_a_stopped_run_held(run_dir: Path) -> None:
    """A run stopped between a prepare and its gate leaves allocation at `primaries`, under which no
    replica can leave a draining node (EnableAllocationDecider)."""
    fake = cluster(nodes=["a", "b"], settings={ALLOCATION_ENABLE: "primaries"})
    exclusions([RemovedNode("b", False, True)], [], fake, run_dir)
    assert ALLOCATION_ENABLE not in fake.settings
