"""The Kubernetes roll (escluster/rolling.py `kubernetes_roll_script`) as the stack renders it, run against
a stand-in `kubectl` (pods, revisions, `exec` into a pod) and the fake Elasticsearch.

kubectl's contract as the script uses it: `get … -o jsonpath`, `delete pod --wait=true`, and
`exec -i POD -c CONTAINER -- bash -c SCRIPT ARGS` running SCRIPT in the pod with our standard input.
The StatefulSet controller's (OnDelete): a deleted pod comes back with the StatefulSet's updateRevision.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from escluster.k8s_plan import CERTS_DIR
from escluster.rolling import ALLOCATION_ENABLE, POLL_SECONDS
from escluster.scripts import curl_config_user
from escluster.security import ADMIN_USER
from tests import rules
from tests.fake_es import FakeCluster, fake_elasticsearch
from tests.harness import PROJECT, Render, read_stack_config, render
from tests.test_rolling import second

FAKE_KUBECTL = r'''#!/usr/bin/env python3
"""kubectl, for the roll: pods and StatefulSets in $FAKE_K8S (JSON); `exec` runs the script here."""
import json, os, subprocess, sys

args = sys.argv[1:]
while args and args[0] in ("--context", "--namespace"):
    args = args[2:]
state_file = os.environ["FAKE_K8S"]
state = json.load(open(state_file))

def save():
    json.dump(state, open(state_file, "w"))

def jsonpath(args):
    return next(a.split("=", 1)[1] for a in args if a.startswith("jsonpath=")) if "-o" in args else ""

if args[0] == "get" and args[1] == "pods":
    print(" ".join(p for p, pod in state["pods"].items() if pod["ready"]), end=" ")
elif args[0] == "get" and args[1] == "statefulset":
    sts = state["statefulsets"][args[2]]
    path = args[args.index("-o") + 1]
    print(sts["updateRevision"] if "updateRevision" in path else sts["replicas"], end="")
elif args[0] == "get" and args[1] == "pod":
    pod = state["pods"].get(args[2])
    if pod is None:
        sys.exit(1)
    path = args[args.index("-o") + 1]
    if "controller-revision-hash" in path:
        print(pod["revision"], end="")
    else:
        pod["polls"] = pod.get("polls", 0) + 1
        pod["ready"] = pod["polls"] > pod.get("unready_polls", 0)
        save()
        print("true" if pod["ready"] else "false", end="")
elif args[0] == "delete" and args[1] == "pod":
    sts = args[2].rsplit("-", 1)[0]
    state["deleted"].append(args[2])
    never = args[2] in state.get("never_ready", [])
    state["pods"][args[2]] = {"revision": state["statefulsets"][sts]["updateRevision"], "ready": False,
                              "unready_polls": 10**6 if never else 1}
    save()
elif args[0] == "exec":
    script_args = args[args.index("--") + 1:]
    script = script_args[2].replace(os.environ["POD_CA"], os.environ["FAKE_CA"])
    sys.exit(subprocess.run(["bash", "-c", script, *script_args[3:]], stdin=sys.stdin).returncode)
else:
    sys.exit(f"fake kubectl: {args}")
'''

PODS = {
    "kg-data-0": "old",
    "kg-data-1": "old",
    "kg-coord-0": "new",
    "kg-master-0": "old",
    "kg-master-1": "old",
    "kg-master-2": "old",
}


@pytest.fixture
def tools() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="escluster-kubectl-"))
    (directory / "kubectl").write_text(FAKE_KUBECTL)
    (directory / "kubectl").chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def upgraded() -> Render:
    config = read_stack_config("k8s-groups")
    config[f"{PROJECT}:cluster"] = {**config[f"{PROJECT}:cluster"], "version": "9.6.0"}
    return render("k8s-groups", config, previous=second("k8s-groups").outputs)


def roll_command(result: Render) -> dict[str, Any]:
    command = next(c for c in result.of_type(rules.COMMAND) if c.name.endswith("-rolling-roll"))
    return command.inputs


def run_roll(tools: Path, fake: FakeCluster, *, never_ready: tuple[str, ...] = ()) -> tuple[int, str, dict[str, Any]]:
    roll = roll_command(upgraded())
    state = {
        "pods": {name: {"revision": rev, "ready": True} for name, rev in PODS.items()},
        "statefulsets": {
            "kg-data": {"updateRevision": "new", "replicas": 2},
            "kg-coord": {"updateRevision": "new", "replicas": 1},
            "kg-master": {"updateRevision": "new", "replicas": 3},
        },
        "deleted": [],
        "never_ready": list(never_ready),
    }
    (tools / "state.json").write_text(json.dumps(state))
    script = roll["create"].replace(f"sleep {POLL_SECONDS}", "sleep 0.05").replace("1800", "3")
    with fake_elasticsearch(fake, ["localhost"], tools) as server:
        home = tools / "curl"
        home.mkdir(exist_ok=True)
        (home / ".curlrc").write_text(f'connect-to = "::127.0.0.1:{server.port}"\n')
        env = {
            "PATH": f"{tools}:/usr/bin:/bin",
            "FAKE_K8S": str(tools / "state.json"),
            "POD_CA": f"{CERTS_DIR}/ca.crt",
            "FAKE_CA": str(server.ca_file),
            "CURL_HOME": str(home),
            "HOME": str(home),
        }
        result = subprocess.run(
            [*roll["interpreter"], script],
            input=curl_config_user(ADMIN_USER, "admin-pw"),
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    return result.returncode, result.stderr, json.loads((tools / "state.json").read_text())


def cluster(**fields: Any) -> FakeCluster:
    nodes = list(PODS)
    return FakeCluster(users={ADMIN_USER: ("admin-pw", "superuser")}, nodes=nodes, **fields)


def test_the_roll_restarts_old_pods_one_at_a_time_masters_last(tools: Path) -> None:
    fake = cluster(absent_for={"kg-data-1": 1, "kg-master-2": 1})
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
    assert "after kg-data-1 restarted, the cluster did not get back to green" in stderr
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
    assert code == 1 and "not touching a red cluster" in stderr
    assert state["deleted"] == []
