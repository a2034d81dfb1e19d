"""The checks of a CA rotation, as the stacks render them, run against the fake Elasticsearch: on Docker
and Swarm in the task container's conditions (the image's user, its tmpfs), on Kubernetes through the
stand-in kubectl. Step 3 (the old CA leaves) needs every node to present a certificate from the new CA;
step 2 on Kubernetes (certificates from the new CA reach the pods) needs every pod to trust it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests import rules
from tests.contracts.conditions import run_as
from tests.contracts.steps import _tmpfs, _user
from tests.fake_es import FakeCluster, fake_elasticsearch
from tests.fake_kubectl import fast, run_kubectl_script
from tests.harness import Render
from tests.test_certificates import PEM_BLOCK, check_task, rotated
from tests.test_kubernetes_roll import PODS

STATEFULSETS = {"kg-data": 2, "kg-coord": 1, "kg-master": 3}


def issuing_pem(result: Render) -> str:
    """The new CA's certificate as the mocks made it (the step 3 bundle holds it alone)."""
    (pem,) = PEM_BLOCK.findall(result.outputs["ca_certificate"])
    return str(pem) + "\n"


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="escluster-ca-check-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def run_container_check(workdir: Path, server_ca: trustme.CA | None, script_ca: trustme.CA) -> tuple[int, str]:
    """The rendered step 3 check of `lab`, its new CA replaced by `script_ca`, in the task container's
    conditions, every node URL answered by a fake whose certificate `server_ca` issued (None: nothing
    answers)."""
    step3 = rotated("lab")[3]
    check = check_task(step3, "-issuer-check")
    assert check is not None
    argv = rules.docker_argv(check.inputs["create"])
    directory, (uid, gid, mode) = _tmpfs(argv)
    tmpfs = workdir / "tmpfs"
    tmpfs.mkdir()
    os.chown(tmpfs, uid, gid)
    tmpfs.chmod(mode)
    script = fast(argv[-1].replace(directory, str(tmpfs)))
    assert issuing_pem(step3) in script
    script = script.replace(issuing_pem(step3), script_ca.cert_pem.bytes().decode())
    hosts = sorted({url.split("//")[1].rsplit(":", 1)[0] for url in script.split() if url.startswith("https://")})
    home = workdir / "home"
    home.mkdir()
    home.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "CURL_HOME": str(home)}
    if server_ca is None:
        (home / ".curlrc").write_text('connect-to = "::127.0.0.1:9"\n')
        result = run_as(_user(argv), ["bash", "-c", script], env=env, stdin=check.inputs["stdin"])
        return result.returncode, result.stdout + result.stderr
    with fake_elasticsearch(FakeCluster(), hosts, workdir, authority=server_ca) as server:
        (home / ".curlrc").write_text(f'connect-to = "::127.0.0.1:{server.port}"\n')
        result = run_as(_user(argv), ["bash", "-c", script], env=env, stdin=check.inputs["stdin"])
    return result.returncode, result.stdout + result.stderr


def test_the_old_ca_leaves_when_every_node_presents_the_new_one(workdir: Path) -> None:
    new = trustme.CA()
    code, output = run_container_check(workdir, new, new)
    assert code == 0, output
    assert "every node presents a certificate from CA generation 2" in output


def test_a_node_still_on_the_old_ca_keeps_it(workdir: Path) -> None:
    code, output = run_container_check(workdir, trustme.CA(), trustme.CA())
    assert code == 1
    assert "does not present a certificate from CA generation 2" in output and "the old CA stays" in output


def test_a_node_that_does_not_answer_keeps_the_old_ca(workdir: Path) -> None:
    code, output = run_container_check(workdir, None, trustme.CA())
    assert code == 1 and "does not present a certificate from CA generation 2 (or does not answer)" in output


# ---- Kubernetes -------------------------------------------------------------------------------------------


def k8s_check(step: int, suffix: str) -> tuple[Render, dict[str, Any]]:
    result = rotated("k8s-groups")[step]
    check = check_task(result, suffix)
    assert check is not None
    return result, dict(check.inputs)


def admin() -> FakeCluster:
    return FakeCluster(nodes=list(PODS))


def test_kubernetes_issues_from_the_new_ca_once_every_pod_trusts_it(tools: Path) -> None:
    result, command = k8s_check(2, "-trust-check")
    both = result.outputs["ca_certificate"]
    code, output, _ = run_kubectl_script(
        tools, admin(), command, PODS, STATEFULSETS, extra={"bundles": dict.fromkeys(PODS, both)}
    )
    assert code == 0, output
    assert "every pod trusts CA generation 2" in output


def test_a_pod_whose_files_are_not_updated_yet_holds_the_new_certificates_back(tools: Path) -> None:
    result, command = k8s_check(2, "-trust-check")
    old_only = rotated("k8s-groups")[0].outputs["ca_certificate"]
    bundles = dict.fromkeys(PODS, result.outputs["ca_certificate"]) | {"kg-master-1": old_only}
    code, output, _ = run_kubectl_script(tools, admin(), command, PODS, STATEFULSETS, extra={"bundles": bundles})
    assert code == 1 and "kg-master-1 does not trust CA generation 2 after" in output


def test_the_trust_check_waits_for_the_kubelet_to_update_a_pods_files(tools: Path) -> None:
    """The kubelet copies a changed Secret into a running pod within its sync period: the check asks again
    until the deadline instead of failing the `up` on the first look."""
    result, command = k8s_check(2, "-trust-check")
    old_only = rotated("k8s-groups")[0].outputs["ca_certificate"]
    both = result.outputs["ca_certificate"]
    bundles = dict.fromkeys(PODS, both) | {"kg-master-1": [old_only, old_only, both]}
    code, output, state = run_kubectl_script(tools, admin(), command, PODS, STATEFULSETS, extra={"bundles": bundles})
    assert code == 0, output
    assert state["bundles"]["kg-master-1"] == [both]


def test_a_pod_whose_bundle_cannot_be_read_holds_the_new_certificates_back(tools: Path) -> None:
    _, command = k8s_check(2, "-trust-check")
    code, output, _ = run_kubectl_script(tools, admin(), command, PODS, STATEFULSETS, extra={"bundles": {}})
    assert code == 1 and "kg-data-0 does not trust CA generation 2 after" in output and "cannot be read" in output


def kubernetes_issuer_check(tools: Path, server_ca: trustme.CA, script_ca: trustme.CA, **extra: Any) -> tuple[int, str]:
    result, command = k8s_check(3, "-issuer-check")
    assert issuing_pem(result) in command["create"]
    command["create"] = command["create"].replace(issuing_pem(result), script_ca.cert_pem.bytes().decode())
    code, output, _ = run_kubectl_script(tools, admin(), command, PODS, STATEFULSETS, extra=extra, authority=server_ca)
    return code, output


def test_kubernetes_drops_the_old_ca_when_every_pod_presents_the_new_one(tools: Path) -> None:
    new = trustme.CA()
    code, output = kubernetes_issuer_check(tools, new, new)
    assert code == 0, output
    assert "every pod presents a certificate from CA generation 2" in output


def test_kubernetes_keeps_the_old_ca_while_a_pod_presents_it(tools: Path) -> None:
    code, output = kubernetes_issuer_check(tools, trustme.CA(), trustme.CA())
    assert code == 1 and "does not present a certificate from CA generation 2" in output


def test_kubernetes_keeps_the_old_ca_while_a_pod_cannot_be_asked(tools: Path) -> None:
    new = trustme.CA()
    code, output = kubernetes_issuer_check(tools, new, new, unreachable=["kg-data-1"])
    assert code == 1 and "kg-data-1 does not present a certificate from CA generation 2" in output


def test_the_issuer_check_asks_again_until_a_pod_serves_its_new_certificate(tools: Path) -> None:
    """A node serves a new certificate only after the kubelet's sync and its own reload: a first "000" is
    not the answer."""
    new = trustme.CA()
    result, command = k8s_check(3, "-issuer-check")
    command["create"] = command["create"].replace(issuing_pem(result), new.cert_pem.bytes().decode())
    state_extra = {"unreachable_polls": {"kg-master-0": 2}}
    code, output, state = run_kubectl_script(
        tools, admin(), command, PODS, STATEFULSETS, extra=state_extra, authority=new
    )
    assert code == 0, output
    assert state["unreachable_polls"]["kg-master-0"] == 0
