"""A stand-in `kubectl` for running the program's Kubernetes scripts (the roll, the drain, the CA checks)
against the fake Elasticsearch.

kubectl's contract as the scripts use it: `get … -o jsonpath`, `delete pod --wait=true`, and
`exec [-i] POD -c CONTAINER -- bash -c SCRIPT ARGS` (or `-- cat FILE`) running in the pod with our
standard input. The StatefulSet controller's (OnDelete): a deleted pod comes back with the StatefulSet's
updateRevision.
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
import trustme

from escluster.ca_checks import CA_CHECK_TIMEOUT_SECONDS, RELOAD_WAIT_SECONDS
from escluster.k8s_plan import CERTS_DIR
from escluster.rolling import POLL_SECONDS
from escluster.scripts import curl_config_user
from escluster.security import ADMIN_USER
from tests.fake_es import FakeCluster, fake_elasticsearch

FAKE_KUBECTL = r'''#!/usr/bin/env python3
"""kubectl, for the roll: pods and StatefulSets in $FAKE_K8S (JSON); `exec` runs the script here."""
import json, os, subprocess, sys

args = sys.argv[1:]
while args and (args[0] in ("--context", "--namespace", "--kubeconfig") or args[0].startswith("--request-timeout=")):
    args = args[1:] if args[0].startswith("--request-timeout=") else args[2:]
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
    field = next(f for f in ("updateRevision", "replicas", "observedGeneration", "generation") if f in path)
    if field == "observedGeneration" and sts.get("lag_polls", 0) > 0:  # the controller has not caught up yet
        sts["lag_polls"] -= 1
        save()
        print(0, end="")
    elif field == "updateRevision" and sts.get("lag_polls", 0) > 0:  # ... so it still names the old template
        print("old", end="")
    else:
        print(sts.get(field, 1), end="")
elif args[0] == "get" and args[1] == "pod":
    pod = state["pods"].get(args[2])
    if pod is None:
        sys.exit(0 if "--ignore-not-found" in args else 1)
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
    pod = args[2] if args[1] == "-i" else args[1]
    if pod in state.get("unreachable", []):
        sys.exit("error: unable to upgrade connection: container not found")
    if state.get("unreachable_polls", {}).get(pod, 0) > 0:  # not answering for a few more asks
        state["unreachable_polls"][pod] -= 1
        save()
        sys.exit("error: unable to upgrade connection: container not found")
    if script_args[0] == "cat":
        bundle = state.get("bundles", {}).get(pod)
        if isinstance(bundle, list):  # successive answers, the last one for good: the kubelet's sync
            bundle = bundle.pop(0) if len(bundle) > 1 else bundle[0]
            save()
        if bundle is None:
            sys.exit(1)
        print(bundle, end="")
        sys.exit(0)
    script = script_args[2].replace(os.environ["POD_CA"], os.environ["FAKE_CA"])
    sys.exit(subprocess.run(["bash", "-c", script, *script_args[3:]], stdin=sys.stdin).returncode)
else:
    sys.exit(f"fake kubectl: {args}")
'''


@pytest.fixture
def tools() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="escluster-kubectl-"))
    (directory / "kubectl").write_text(FAKE_KUBECTL)
    (directory / "kubectl").chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def fast(script: str) -> str:
    """A rendered script with its polls, deadlines and reload wait shortened for a test."""
    script = script.replace(f"sleep {POLL_SECONDS}", "sleep 0.05").replace("1800", "3")
    return script.replace(f"check_timeout={CA_CHECK_TIMEOUT_SECONDS}", "check_timeout=2").replace(
        f"sleep {RELOAD_WAIT_SECONDS}", "sleep 0"
    )


def deleted_pods(state_file: Path) -> list[str]:
    try:
        return list(json.loads(state_file.read_text())["deleted"])
    except json.JSONDecodeError:  # the stand-in kubectl is writing it
        return []


def run_kubectl_script(
    tools: Path,
    fake: FakeCluster,
    command: dict[str, Any],
    pods: dict[str, str],
    statefulsets: dict[str, int],
    *,
    never_ready: tuple[str, ...] = (),
    unready: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
    authority: trustme.CA | None = None,
) -> tuple[int, str, dict[str, Any]]:
    """A rendered Command (`create`, `interpreter`) run against the stand-in kubectl, whose pods (name →
    revision) answer as the fake Elasticsearch; StatefulSets (name → replicas) have revision "new".
    `extra`: more of the stand-in's state (`bundles`: what `cat` of a pod's file prints, or a list of
    successive answers; `unreachable`; `unreachable_polls`: pod → execs that fail before it answers;
    `lag`: StatefulSet → polls for which its controller reports an older observedGeneration);
    `authority`: the CA of the fake's certificate."""
    state = {
        # `unready`: pods not ready until they are restarted.
        "pods": {
            name: {"revision": rev, "ready": name not in unready, "unready_polls": 10**6 if name in unready else 0}
            for name, rev in pods.items()
        },
        "statefulsets": {
            name: {"updateRevision": "new", "replicas": n, "lag_polls": (extra or {}).get("lag", {}).get(name, 0)}
            for name, n in statefulsets.items()
        },
        "deleted": [],
        "never_ready": list(never_ready),
        **(extra or {}),
    }
    (tools / "state.json").write_text(json.dumps(state))
    # A deleted pod is missing from the cluster for a poll, until it is back.
    fake.restarted = lambda: deleted_pods(tools / "state.json")
    script = fast(command["create"])
    with fake_elasticsearch(fake, ["localhost"], tools, authority=authority) as server:
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
            [*command["interpreter"], script],
            input=curl_config_user(ADMIN_USER, "admin-pw"),
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    return result.returncode, result.stdout + result.stderr, json.loads((tools / "state.json").read_text())
