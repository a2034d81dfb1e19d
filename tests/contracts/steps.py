"""The setup step of a render, on any target, as something the tests can run: its script as rendered,
the directory it reads its files from, the user it runs as, and its input (stdin, or mounted files)."""

from __future__ import annotations

from dataclasses import dataclass

from tests import rules
from tests.contracts.conditions import ELASTICSEARCH_USER, ProcessUser, ProvidedFile, k8s_files, k8s_pod_spec, k8s_user
from tests.harness import Registration, Render

JOB = "kubernetes:batch/v1:Job"


@dataclass(frozen=True)
class SetupStep:
    resource: Registration
    script: str
    files_dir: str
    user: ProcessUser
    # Docker and Swarm: the secrets on standard input, written by the script into a tmpfs with these
    # owner and mode; Kubernetes: the files mounted from a Secret.
    stdin: str
    tmpfs: tuple[int, int, int] | None
    files: dict[str, ProvidedFile]


def _tmpfs(argv: list[str]) -> tuple[str, tuple[int, int, int]]:
    """`--tmpfs <dir>:<options>` of a `docker run`: the directory, and its uid, gid and mode."""
    target, _, options = argv[argv.index("--tmpfs") + 1].partition(":")
    values = dict(option.partition("=")[::2] for option in options.split(","))
    return target, (int(values["uid"]), int(values["gid"]), int(values["mode"], 8))


def _user(argv: list[str]) -> ProcessUser:
    uid, _, gid = argv[argv.index("--user") + 1].partition(":")
    return ProcessUser(int(uid), int(gid), ELASTICSEARCH_USER.groups)


def setup_steps(render: Render) -> list[SetupStep]:
    steps = []
    for command in render.of_type(rules.COMMAND):
        argv = rules.docker_argv(str(command.inputs.get("create", "")))
        if argv[:2] != ["docker", "run"]:
            continue
        directory, tmpfs = _tmpfs(argv)
        script = argv[argv.index("-c") + 1]
        steps.append(SetupStep(command, script, directory, _user(argv), command.inputs["stdin"], tmpfs, {}))
    for job in render.of_type(JOB):
        container = k8s_pod_spec(job)["containers"][0]
        mount = container["volumeMounts"][0]["mountPath"]
        user = k8s_user(job, container, ELASTICSEARCH_USER)
        steps.append(SetupStep(job, container["command"][-1], mount, user, "", None, k8s_files(render, job, container)))
    return steps
