"""Our scripts, as each stack renders them, run under the conditions the engines give them: as the image's
user (uid, gid and groups), with their files at the owner and mode the engine gives, against a fake
Elasticsearch over real TLS (tests/fake_es.py). Paths are moved into a scratch directory; the scripts'
text is otherwise the rendered one.

Sources of the conditions: tests/contracts/conditions.py. What the fake answers: tests/fake_es.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from escluster.k8s_plan import CERTS_DIR, PROBE_DIR
from escluster.scripts import (
    KIBANA_DOCKER,
    KIBANA_SECRET_DIR,
    LOCAL_KIBANA_URL,
    SetupFiles,
    kibana_healthcheck,
    kibana_start_script,
    read_setup_stdin,
    setup_script,
    setup_stdin,
)
from escluster.security import ADMIN_USER, PROBE_USER
from tests import rules
from tests.conftest import rendered
from tests.contracts.conditions import ELASTICSEARCH_USER, ProvidedFile, materialize, run_as
from tests.contracts.steps import setup_steps
from tests.contracts.test_elastic_images import keystore_add_reads
from tests.contracts.workloads import ALL_STACKS, ELASTICSEARCH, KIBANA, processes
from tests.fake_es import FakeCluster, RunningServer, fake_elasticsearch, fake_kibana
from tests.harness import Render, stacks_of_target

PATH = "/usr/bin:/bin"
FAKE_KEYSTORE_TOOL = """#!/bin/bash
# Stands in for the image's bin/kibana-keystore: `create` makes the keystore, `add <key> --stdin --force`
# keeps what it reads (add.js then trims and JSON-parses it; the test does that).
set -eu
case "$1" in
  create) mkdir -p config/keystore.d && : > config/kibana.keystore ;;
  add) [ -f config/kibana.keystore ] || { echo "ERROR: Kibana keystore not found" >&2; exit 1; }
       cat > "config/keystore.d/$2" ;;
  *) exit 2 ;;
esac
"""


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A scratch directory the image's user can traverse (pytest's own is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="escluster-contract-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def generated(render: Render, suffix: str) -> str:
    """A password pulumi-random generated for the stack (the mock's value for `<cluster>-credentials-<suffix>`)."""
    resource = next(r for r in render.of_type(rules.RANDOM_PASSWORD) if r.name.endswith(f"-credentials-{suffix}"))
    return f"generated-{resource.name}"


def curl_home(run_dir: Path, server: RunningServer) -> dict[str, str]:
    """Environment that sends every curl connection to the fake, keeping the URL's host name for TLS."""
    home = run_dir / "curl"
    home.mkdir(mode=0o755, exist_ok=True)
    # Quoted: curl reads an unquoted ":" after the option name as the separator.
    (home / ".curlrc").write_text(f'connect-to = "::127.0.0.1:{server.port}"\n')
    (home / ".curlrc").chmod(0o644)
    return {"PATH": PATH, "CURL_HOME": str(home), "HOME": str(home)}


def url_hosts(script: str) -> list[str]:
    return sorted(set(re.findall(r"https://([^:/'\"\s]+)", script)))


def cluster_for(render: Render) -> FakeCluster:
    return FakeCluster(
        users={
            ADMIN_USER: (generated(render, "admin"), "superuser"),
            PROBE_USER: (generated(render, "probe"), "monitor"),
        }
    )


# ---- the setup step -----------------------------------------------------------------------------------


def run_rendered_setup(
    render: Render, run_dir: Path, tmpfs: tuple[int, int, int] | None = None
) -> tuple[subprocess.CompletedProcess[str], FakeCluster]:
    """The stack's setup step as rendered, against a fake cluster that knows the program's users.
    `tmpfs`: the owner and mode of the step's tmpfs, if not the ones its command asks for."""
    [step] = setup_steps(render)
    files_dir = run_dir / "setup"
    script = step.script.replace(step.files_dir, str(files_dir))
    cluster = cluster_for(render)
    with fake_elasticsearch(cluster, url_hosts(step.script), run_dir) as server:
        stdin = ""
        if step.tmpfs is not None:
            uid, gid, mode = tmpfs or step.tmpfs
            files_dir.mkdir()
            os.chown(files_dir, uid, gid)
            files_dir.chmod(mode)
            stdin = "".join(step.stdin.splitlines(keepends=True)[:3]) + server.ca_pem
        else:
            files = [
                ProvidedFile(f.path, server.ca_pem if f.path.endswith("/ca.crt") else f.content, f.uid, f.gid, f.mode)
                for f in step.files.values()
            ]
            materialize(files, run_dir, lambda path: path.replace(step.files_dir, "setup"))
        env = curl_home(run_dir, server)
        # The step gives up after its deadline; a test that expects it to fail lets it fail fast.
        if tmpfs:
            script = re.sub(r"deadline=\$\(\(SECONDS \+ \d+\)\)", "deadline=$((SECONDS + 2))", script)
        return run_as(step.user, ["bash", "-c", script], env=env, stdin=stdin), cluster


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_the_rendered_setup_step_sets_both_passwords(stack: str, run_dir: Path) -> None:
    """The step, as rendered for the stack, run as its user: in a tmpfs of its own (Docker, Swarm: `docker
    run --tmpfs` with the uid and mode of the command) or from the Secret the Job mounts (Kubernetes:
    root-owned, group fsGroup, mode 0440). It must authenticate as the file-realm admin and give `elastic`
    the stack's password and `kibana_system` the one Kibana's keystore holds."""
    render = rendered(stack)
    kibana = next(p for p in processes(render) if p.image == KIBANA)
    kibana_password = keystore_add_reads(kibana.files[f"{KIBANA_SECRET_DIR}/elasticsearch.password"].content)
    result, cluster = run_rendered_setup(render, run_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cluster_uuid=fake-cluster-uuid" in result.stdout
    assert cluster.passwords_set == {"elastic": render.outputs["elastic_password"], "kibana_system": kibana_password}
    assert {request.user for request in cluster.requests} == {ADMIN_USER}
    for secret in (render.outputs["elastic_password"], str(kibana_password), generated(render, "admin")):
        assert secret not in result.stdout + result.stderr, "the step printed a secret"


def test_a_tmpfs_the_steps_user_cannot_write_stops_it() -> None:
    """Counter-test: without `uid=1000` in `--tmpfs` the directory is root's, and the step (uid 1000)
    cannot write its secrets there."""
    directory = Path(tempfile.mkdtemp(prefix="escluster-contract-"))
    directory.chmod(0o755)
    try:
        result, cluster = run_rendered_setup(rendered("dev"), directory, tmpfs=(0, 0, 0o700))
    finally:
        shutil.rmtree(directory)
    assert result.returncode != 0 and "Permission denied" in result.stderr
    assert cluster.passwords_set == {}


def run_setup_against(cluster: FakeCluster | None, run_dir: Path, admin: str) -> tuple[int, str]:
    """The setup script (a 2-second deadline) against `cluster`, or against nothing listening."""
    files = SetupFiles(str(run_dir / "setup"))
    (run_dir / "setup").mkdir()
    os.chown(run_dir / "setup", 1000, 0)
    (run_dir / "setup").chmod(0o700)
    script = read_setup_stdin(files) + setup_script(["https://node-0:9200"], files, "docker logs node-0", 2)
    if cluster is None:
        env = {"PATH": PATH, "CURL_HOME": str(run_dir), "HOME": str(run_dir)}
        stdin = setup_stdin(admin, "elastic-pw", "kibana-pw", "no CA\n")
        result = run_as(ELASTICSEARCH_USER, ["bash", "-c", script], env=env, stdin=stdin)
    else:
        with fake_elasticsearch(cluster, ["node-0"], run_dir) as server:
            stdin = setup_stdin(admin, "elastic-pw", "kibana-pw", server.ca_pem)
            result = run_as(ELASTICSEARCH_USER, ["bash", "-c", script], env=curl_home(run_dir, server), stdin=stdin)
    return result.returncode, result.stderr


def test_setup_gives_up_on_a_cluster_without_master_and_says_what_to_do(run_dir: Path) -> None:
    cluster = FakeCluster(users={ADMIN_USER: ("admin-pw", "superuser")}, formed=False)
    code, stderr = run_setup_against(cluster, run_dir, "admin-pw")
    assert code == 1
    assert "the cluster has no elected master" in stderr
    assert "docker logs node-0" in stderr and "run 'pulumi up' again" in stderr
    assert cluster.passwords_set == {}


def test_setup_gives_up_when_the_nodes_refuse_the_admin(run_dir: Path) -> None:
    cluster = FakeCluster(users={ADMIN_USER: ("admin-pw", "superuser")})
    code, stderr = run_setup_against(cluster, run_dir, "wrong-pw")
    assert code == 1 and "the nodes refused the program's admin user escluster-admin" in stderr


def test_setup_gives_up_when_no_node_answers(run_dir: Path) -> None:
    code, stderr = run_setup_against(None, run_dir, "admin-pw")
    assert code == 1 and "no node answered over HTTPS" in stderr


# ---- Kibana's start ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_kibanas_start_script_fills_the_keystore_as_kibanas_user(stack: str, run_dir: Path) -> None:
    """Kibana's start script as rendered, run as Kibana's user with the keystore files at the owner and
    mode its engine gives them, in a Kibana home laid out as the image's (config/ owned 1000:0, 0775)."""
    for process in (p for p in processes(rendered(stack)) if p.image == KIBANA):
        secrets = [f for path, f in process.files.items() if path.startswith(KIBANA_SECRET_DIR)]
        materialize(secrets, run_dir, lambda path: path.replace(KIBANA_SECRET_DIR, "secrets"))
        home = run_dir / "kibana"
        (home / "bin").mkdir(parents=True, exist_ok=True)
        (home / "config").mkdir(exist_ok=True)
        os.chown(home / "config", 1000, 0)
        (home / "config").chmod(0o775)
        tool = home / "bin" / "kibana-keystore"
        tool.write_text(FAKE_KEYSTORE_TOOL)
        tool.chmod(0o755)
        started = run_dir / "kibana-docker"
        started.write_text("#!/bin/sh\necho kibana started\n")
        started.chmod(0o755)
        script = process.command[-1].replace(KIBANA_SECRET_DIR, str(run_dir / "secrets"))
        script = script.replace(KIBANA_DOCKER, str(started))
        assert process.command[-1] == kibana_start_script()
        result = run_as(process.user, ["bash", "-c", script], env={"PATH": PATH}, cwd=home)
        assert result.returncode == 0, f"{process.name}: {result.stderr}"
        assert result.stdout.strip() == "kibana started"
        stored = {p.name: p.read_text() for p in (home / "config" / "keystore.d").iterdir()}
        assert {f"{KIBANA_SECRET_DIR}/{entry}" for entry in stored} == {f.path for f in secrets}
        for file in secrets:
            assert keystore_add_reads(stored[file.path.rsplit("/", 1)[1]]) == json.loads(file.content)
        shutil.rmtree(run_dir / "secrets")
        shutil.rmtree(home)


# ---- health checks and readiness ---------------------------------------------------------------------


def docker_healthcheck(resource_inputs: dict[str, object]) -> str:
    spec = resource_inputs.get("taskSpec")
    check = spec["containerSpec"]["healthcheck"] if isinstance(spec, dict) else resource_inputs["healthcheck"]
    assert isinstance(check, dict) and check["tests"][0] == "CMD-SHELL"
    return str(check["tests"][1])


@pytest.mark.parametrize("stack", stacks_of_target("docker") + stacks_of_target("swarm"))
def test_a_nodes_docker_health_check_passes_on_a_node_asking_for_credentials(stack: str, run_dir: Path) -> None:
    """Docker runs HEALTHCHECK CMD-SHELL as the container's user: the node's check passes on what an
    Elasticsearch node without credentials answers (401 "missing authentication credentials") over TLS
    with the cluster CA, and fails when nothing answers."""
    for process in (p for p in processes(rendered(stack)) if p.role == "node"):
        check = docker_healthcheck(process.resource.inputs)
        ca = next(path for path in process.files if path.endswith("/ca/ca.crt"))
        with fake_elasticsearch(FakeCluster(), ["localhost"], run_dir) as server:
            command = check.replace(ca, str(server.ca_file))
            assert run_as(process.user, ["sh", "-c", command], env=curl_home(run_dir, server)).returncode == 0
        assert run_as(process.user, ["sh", "-c", command], env=curl_home(run_dir, server)).returncode != 0


@pytest.mark.parametrize("status", [302, 200, 503])
def test_kibanas_health_check_waits_for_kibana_to_serve(status: str, run_dir: Path) -> None:
    """Kibana answers 503 "Kibana server is not ready yet" until it can use Elasticsearch (elastic/kibana
    `http_service.ts` preboot), then redirects its root to the login page."""
    for stack in ("dev", "staging", "prod"):
        for process in (p for p in processes(rendered(stack)) if p.image == KIBANA):
            rendered_check = (
                docker_healthcheck(process.resource.inputs)
                if not process.resource.type.startswith("kubernetes:")
                else process.resource.inputs["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"][
                    "command"
                ][-1]
            )
            assert rendered_check == kibana_healthcheck()
    with fake_kibana(int(status)) as url:
        check = kibana_healthcheck().replace(LOCAL_KIBANA_URL, url)
        result = run_as(ELASTICSEARCH_USER, ["bash", "-c", check], env={"PATH": PATH})
    assert (result.returncode == 0) == (int(status) != 503)


@pytest.mark.parametrize("stack", stacks_of_target("kubernetes"))
def test_the_readiness_probe_reads_health_with_the_probe_users_file(stack: str, run_dir: Path) -> None:
    """The readiness probe as rendered, run as the pod's user with the probe's credentials file at the
    kubelet's owner and mode (root, group fsGroup, 0440): ready once the cluster is at least yellow,
    then only while the node answers."""
    render = rendered(stack)
    for process in (p for p in processes(render) if p.role == "node"):
        container = next(
            c
            for c in process.resource.inputs["spec"]["template"]["spec"]["containers"]
            if c["name"] == process.container
        )
        probe = container["readinessProbe"]["exec"]["command"][-1]
        credentials = process.files[f"{PROBE_DIR}/probe.curlrc"]
        materialize([credentials], run_dir, lambda path: path.replace(PROBE_DIR, "probe"))
        marker_dir = run_dir / "tmp"
        marker_dir.mkdir()
        marker_dir.chmod(stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO | stat.S_ISVTX)
        for status, ready in (("red", False), ("yellow", True)):
            cluster = cluster_for(render)
            cluster.status = status
            with fake_elasticsearch(cluster, ["localhost"], run_dir) as server:
                script = probe.replace("/tmp/.es_started", f"{marker_dir}/.es_started")
                script = script.replace(f"{CERTS_DIR}/ca.crt", str(server.ca_file))
                script = script.replace(PROBE_DIR, str(run_dir / "probe"))
                result = run_as(process.user, ["bash", "-c", script], env=curl_home(run_dir, server))
            assert (result.returncode == 0) == ready, f"{process.name} at {status}: {result.stderr}"
            assert {r.user for r in cluster.requests} == {PROBE_USER}
        assert any(marker_dir.iterdir()), "a ready node remembers it started"
        shutil.rmtree(marker_dir)
        shutil.rmtree(run_dir / "probe")


def test_the_process_user_of_each_workload_is_the_images(run_dir: Path) -> None:
    """Where no engine sets a user, the image's applies (ES `USER 1000:0`, Kibana `USER 1000`); where
    Kubernetes does, it says the same uid."""
    for stack in ALL_STACKS:
        for process in processes(rendered(stack)):
            if process.role in ("node", "kibana", "setup"):
                assert process.user.uid == 1000, f"{process.name}: runs as uid {process.user.uid}"
                expected_gid = 0 if process.image == ELASTICSEARCH else 1000
                assert process.user.gid == expected_gid, f"{process.name}: gid {process.user.gid}"


def test_keystore_files_only_root_may_read_stop_kibanas_start(run_dir: Path) -> None:
    """Counter-test: the same Kibana files at mode 0400 (root's alone) are unreadable for Kibana's user."""
    process = next(p for p in processes(rendered("dev")) if p.image == KIBANA)
    secrets = [
        ProvidedFile(f.path, f.content, f.uid, f.gid, 0o400)
        for path, f in process.files.items()
        if path.startswith(KIBANA_SECRET_DIR)
    ]
    materialize(secrets, run_dir, lambda path: path.replace(KIBANA_SECRET_DIR, "secrets"))
    (run_dir / "kibana" / "bin").mkdir(parents=True)
    (run_dir / "kibana" / "bin" / "kibana-keystore").write_text(FAKE_KEYSTORE_TOOL)
    (run_dir / "kibana" / "bin" / "kibana-keystore").chmod(0o755)
    (run_dir / "kibana" / "config").mkdir()
    os.chown(run_dir / "kibana" / "config", 1000, 0)
    script = process.command[-1].replace(KIBANA_SECRET_DIR, str(run_dir / "secrets"))
    result = run_as(process.user, ["bash", "-c", script], env={"PATH": PATH}, cwd=run_dir / "kibana")
    assert result.returncode != 0 and "Permission denied" in result.stderr
