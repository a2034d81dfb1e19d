"""The local commands the program has pulumi-command run (`/bin/sh -c <create>` unless an interpreter is
given), executed with stand-ins for `ssh`, `docker` and `kubectl` that record what they are asked.

Contracts they rely on:
- docker/cli `cli/connhelper/ssh/ssh.go`: the CLI takes no ssh options for an ssh:// host, so over ssh
  the program runs the engine host's own `docker`; ssh hands the remote command to the login shell,
  which parses it once more (the stand-in does the same with `sh -c`);
- docker/cli `cli/command/node/update.go`: `--label-rm` of a label the node does not have fails;
- kubectl and MetalLB's documented strictARP recipe (a pipe through sed, which must fail when `get` fails);
- MetalLB's webhook answers some time after its controller is ready (metallb/metallb#1610, #1612).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.kubernetes.metallb import BASH
from escluster.engines import engine_command, parse_engine
from tests import rules
from tests.conftest import rendered
from tests.harness import Registration, stacks_of_target

RECORDER = """#!/bin/bash
# Records each call: the program's name and arguments, NUL-separated, in call.<n>; its stdin in stdin.<n>.
n=$(ls "$RECORD_DIR" | grep -c '^call' || true)
printf '%s\\0' "$(basename "$0")" "$@" > "$RECORD_DIR/call.$n"
if [ ! -t 0 ]; then cat > "$RECORD_DIR/stdin.$n"; fi
"""
FAKE_SSH = """#!/bin/bash
# Like ssh: skip the options (and their values) up to `--`, take the host, hand the rest to a shell.
while [ "$1" != "--" ]; do shift; done
shift 2
exec sh -c "$*"
"""


@pytest.fixture
def tools() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="escluster-tools-"))
    (directory / "calls").mkdir()
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def install(tools: Path, name: str, script: str) -> None:
    path = tools / name
    path.write_text(script)
    path.chmod(0o755)


def run(
    tools: Path,
    command: str,
    *,
    env: dict[str, str] | None = None,
    stdin: str = "",
    interpreter: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": f"{tools}:/usr/bin:/bin", "RECORD_DIR": str(tools / "calls"), **(env or {})}
    argv = [*(interpreter or ["/bin/sh", "-c"]), command]
    return subprocess.run(argv, env=environment, input=stdin, capture_output=True, text=True, check=False, timeout=60)


def calls(tools: Path) -> list[list[str]]:
    found = sorted((tools / "calls").glob("call.*"), key=lambda p: int(p.suffix[1:]))
    return [p.read_text().split("\0")[:-1] for p in found]


def command(stack: str, name: str) -> Registration:
    return rendered(stack).named(name)


@pytest.mark.parametrize("stack", stacks_of_target("docker") + stacks_of_target("swarm"))
def test_the_setup_command_reaches_docker_with_its_argv_and_stdin(stack: str, tools: Path) -> None:
    """Through ssh (the remote shell re-parses) or the local CLI, `docker` gets exactly the argv the
    program built, and the secrets on stdin arrive whole."""
    step = next(
        c
        for c in rendered(stack).of_type(rules.COMMAND)
        if "docker" in str(c.inputs["create"]) and " run " in str(c.inputs["create"])
    )
    install(tools, "ssh", FAKE_SSH)
    install(tools, "docker", RECORDER)
    result = run(tools, step.inputs["create"], env=step.inputs.get("environment") or {}, stdin=step.inputs["stdin"])
    assert result.returncode == 0, result.stderr
    [call] = calls(tools)
    assert call == ["docker", *rules.docker_argv(step.inputs["create"])[1:]]
    assert (tools / "calls" / "stdin.0").read_text() == step.inputs["stdin"]


def label_commands(stack: str) -> list[Registration]:
    return [c for c in rendered(stack).of_type(rules.COMMAND) if c.name.startswith("label-")]


@pytest.mark.parametrize("stack", stacks_of_target("swarm"))
def test_labels_are_added_and_removed_only_when_present(stack: str, tools: Path) -> None:
    for label in label_commands(stack):
        argv = rules.docker_argv(label.inputs["create"])
        key, _, value = argv[argv.index("--label-add") + 1].partition("=")
        node = argv[-1]
        environment = label.inputs.get("environment") or {}
        install(tools, "ssh", FAKE_SSH)
        install(tools, "docker", RECORDER)
        assert run(tools, label.inputs["create"], env=environment).returncode == 0
        assert calls(tools)[-1] == ["docker", "node", "update", "--label-add", f"{key}={value}", node]
        for labels, removed in (({key: value, "other": "x"}, True), ({"other": "x"}, False)):
            shutil.rmtree(tools / "calls")
            (tools / "calls").mkdir()
            install(tools, "docker", RECORDER + f"[ \"$2\" = inspect ] && echo '{json.dumps(labels)}'\nexit 0\n")
            result = run(tools, label.inputs["delete"], env=environment)
            assert result.returncode == 0, result.stderr
            removals = [c for c in calls(tools) if "--label-rm" in c]
            assert removals == ([["docker", "node", "update", "--label-rm", key, node]] if removed else [])
        install(tools, "docker", RECORDER + "echo 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
        assert run(tools, label.inputs["delete"], env=environment).returncode != 0, "an unreachable manager passed"
        install(tools, "docker", RECORDER + f"echo 'Error response from daemon: No such node: {node}' >&2\nexit 1\n")
        assert run(tools, label.inputs["delete"], env=environment).returncode == 0, "a node that left blocks the delete"
        shutil.rmtree(tools / "calls")
        (tools / "calls").mkdir()


def test_an_ssh_engine_with_user_port_and_options_is_reached_as_the_provider_reaches_it(tools: Path) -> None:
    engine = parse_engine("ssh://elastic@10.1.0.13:2222")
    line = engine_command(engine, ["node", "ls"], ("-i", "/keys/lab"))
    assert shlex.split(line) == [
        "ssh",
        "-i",
        "/keys/lab",
        "-l",
        "elastic",
        "-p",
        "2222",
        "-o",
        "BatchMode=yes",
        "-T",
        "--",
        "10.1.0.13",
        "docker node ls",
    ]
    install(tools, "ssh", FAKE_SSH)
    install(tools, "docker", RECORDER)
    assert run(tools, line).returncode == 0 and calls(tools) == [["docker", "node", "ls"]]


KUBECTL = """#!/bin/bash
# kubectl: `get` prints kube-proxy's config (or fails when FAIL_GET=1); `apply` records what it reads.
printf '%s\\n' "$*" >> "$RECORD_DIR/kubectl.args"
case "$*" in
  *" get configmap kube-proxy "*) [ "${FAIL_GET:-0}" = 1 ] && exit 1
     printf 'apiVersion: v1\\ndata:\\n  config.conf: |-\\n    mode: ipvs\\n    ipvs:\\n      strictARP: false\\n' ;;
  *"apply --dry-run=server"*)
     n=$(cat "$RECORD_DIR/dry-runs" 2>/dev/null || echo 0)
     echo $((n + 1)) > "$RECORD_DIR/dry-runs"
     cat > /dev/null
     if [ "$n" -lt "${REFUSE:-0}" ]; then
       echo 'failed calling webhook "ipaddresspoolvalidationwebhook.metallb.io"' >&2
       exit 1
     fi ;;
  *" apply "*) cat > "$RECORD_DIR/applied" ;;
  *" rollout status "*) ;;
esac
"""


def test_strict_arp_runs_on_the_stacks_cluster_and_fails_with_its_pipe(tools: Path) -> None:
    step = command("k8s-metallb", "kmb-lb-kube-proxy-strict-arp")
    assert step.inputs["interpreter"] == BASH
    install(tools, "kubectl", KUBECTL)
    result = run(tools, step.inputs["create"], interpreter=step.inputs["interpreter"])
    assert result.returncode == 0, result.stderr
    assert "strictARP: true" in (tools / "calls" / "applied").read_text()
    assert all(
        line.startswith("--context bare-metal ") for line in (tools / "calls" / "kubectl.args").read_text().splitlines()
    )
    (tools / "calls" / "applied").unlink()
    result = run(tools, step.inputs["create"], interpreter=step.inputs["interpreter"], env={"FAIL_GET": "1"})
    assert result.returncode != 0, "a failed `get` passed through the pipe"
    assert run(tools, step.inputs["create"], interpreter=["/bin/bash", "-c"], env={"FAIL_GET": "1"}).returncode == 0, (
        "without pipefail the failure would pass (the contract the interpreter guards)"
    )


def test_the_webhook_wait_retries_until_metallb_accepts_a_pool(tools: Path) -> None:
    step = command("k8s-metallb", "kmb-lb-webhook-ready")
    install(tools, "kubectl", KUBECTL)
    result = run(tools, step.inputs["create"], interpreter=step.inputs["interpreter"], env={"REFUSE": "1"})
    assert result.returncode == 0, result.stderr
    assert (tools / "calls" / "dry-runs").read_text().strip() == "2"
    never = step.inputs["create"].replace("deadline=$((SECONDS + 300))", "deadline=$((SECONDS + 1))")
    result = run(tools, never, interpreter=step.inputs["interpreter"], env={"REFUSE": "99"})
    assert result.returncode == 1 and "MetalLB refused a dry run of pool es-pool for 300 s" in result.stderr
    assert 'failed calling webhook "ipaddresspoolvalidationwebhook.metallb.io"' in result.stderr
