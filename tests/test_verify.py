"""`python -m verify` against the fake Elasticsearch and Kibana (tests/fake_es.py), with the outputs the
stacks render: it passes on a healthy deployment and names what is wrong on each kind of broken one."""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from escluster.state import parse_state
from review.mockrun import MOCK_NOW
from tests.conftest import rendered
from tests.fake_es import FakeCluster, fake_elasticsearch, fake_kibana
from verify.__main__ import main
from verify.checks import Deployment, Result, sends_credentials_safely, verify

PASSWORD = "elastic-password-1"


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="escluster-verify-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def cluster_of(stack: str, **fields: Any) -> FakeCluster:
    state = rendered(stack).outputs["cluster_state"]
    defaults: dict[str, Any] = {
        "users": {"elastic": (PASSWORD, "superuser")},
        "name": state["cluster_name"],
        "nodes": list(state["nodes"]),
        "node_roles": {name: sorted(roles) for name, roles in state["nodes"].items()},
    }
    return FakeCluster(**(defaults | fields))


@contextmanager
def deployed(
    stack: str, fake: FakeCluster, workdir: Path, *, kibana: int = 200, levels: tuple[str, str] = ("available",) * 2
) -> Iterator[tuple[Deployment, dict[str, Any]]]:
    """The stack's rendered outputs, pointing at fakes that answer as `fake` and Kibana do."""
    outputs = dict(rendered(stack).outputs)
    with fake_elasticsearch(fake, ["localhost"], workdir) as server, fake_kibana(kibana, levels) as kibana_url:
        outputs |= {
            "elasticsearch_url": server.url,
            "kibana_url": kibana_url,
            "ca_certificate": server.ca_pem,
            "elastic_password": PASSWORD,
        }
        state = parse_state(outputs["cluster_state"])
        assert state is not None
        yield (
            Deployment(server.url, kibana_url, server.ca_pem, PASSWORD, state, outputs["certificate_expiry"]),
            outputs,
        )


def run(stack: str, fake: FakeCluster, workdir: Path, **kwargs: Any) -> dict[str, Result]:
    with deployed(stack, fake, workdir, **kwargs) as (deployment, _):
        return {result.check: result for result in verify(deployment, now=MOCK_NOW)}


def failed(results: dict[str, Result]) -> dict[str, str]:
    return {name: result.detail for name, result in results.items() if not result.ok}


@pytest.mark.parametrize("stack", ["dev", "lab"])
def test_a_healthy_deployment_passes_every_check(stack: str, workdir: Path) -> None:
    results = run(stack, cluster_of(stack), workdir)
    assert failed(results) == {}
    assert list(results) == ["https", "health", "nodes", "node settings", "kibana_system", "kibana", "certificates"]
    assert "presents " in results["https"].detail and "(localhost, 127.0.0.1)" in results["https"].detail


def test_a_yellow_cluster_fails(workdir: Path) -> None:
    assert "is yellow" in failed(run("lab", cluster_of("lab", status="yellow"), workdir))["health"]


def test_another_cluster_behind_the_url_fails(workdir: Path) -> None:
    assert "the stack's cluster is lab" in failed(run("lab", cluster_of("lab", name="other"), workdir))["health"]


def test_a_cluster_split_in_two_fails(workdir: Path) -> None:
    """Nodes of the plan that formed a cluster of their own are missing from this one."""
    fake = cluster_of("lab", nodes=["lab-es-0", "lab-es-1"])
    assert failed(run("lab", fake, workdir))["nodes"] == "lab-es-2 is not in the cluster"


def test_an_extra_node_or_other_roles_fail(workdir: Path) -> None:
    fake = cluster_of("lab", nodes=["lab-es-0", "lab-es-1", "lab-es-2", "stray"])
    fake.node_roles["lab-es-1"] = ["data"]
    detail = failed(run("lab", fake, workdir))["nodes"]
    assert "stray is in the cluster but not in the stack" in detail
    assert "lab-es-1 has roles ['data'], the stack gives it ['data', 'ingest', 'master']" in detail


def test_a_certificate_from_another_ca_stops_every_check(workdir: Path) -> None:
    with deployed("dev", cluster_of("dev"), workdir) as (deployment, _):
        other = trustme.CA().cert_pem.bytes().decode()
        results = verify(Deployment(**{**deployment.__dict__, "ca_pem": other}), now=MOCK_NOW)
    assert [result.check for result in results] == ["https"]
    assert not results[0].ok and "does not present a certificate for it from the exported CA" in results[0].detail


def test_nothing_answering_fails(workdir: Path) -> None:
    with deployed("dev", cluster_of("dev"), workdir) as (deployment, _):
        pass
    results = verify(deployment, now=MOCK_NOW)
    assert [r.check for r in results] == ["https"] and "does not answer" in results[0].detail


def test_transport_tls_off_fails(workdir: Path) -> None:
    fake = cluster_of("lab", node_settings={"lab-es-2": {"xpack.security.transport.ssl.enabled": "false"}})
    assert failed(run("lab", fake, workdir))["node settings"] == "lab-es-2: transport TLS is off"


def test_initial_master_nodes_left_on_a_formed_cluster_fails(workdir: Path) -> None:
    """`rendered("lab")` is the first `up`: its state says the masters still name the bootstrap list."""
    carrying = {
        "xpack.security.transport.ssl.enabled": "true",
        "cluster.initial_master_nodes": "lab-es-0,lab-es-1,lab-es-2",
    }
    fake = cluster_of("lab", node_settings=dict.fromkeys(["lab-es-0", "lab-es-1", "lab-es-2"], carrying))
    results = run("lab", fake, workdir)
    assert (
        results["node settings"].ok
        and "drop cluster.initial_master_nodes on the next" in results["node settings"].detail
    )
    with deployed("lab", fake, workdir) as (deployment, _):
        later = Deployment(
            **{
                **deployment.__dict__,
                "state": deployment.state.__class__(**{**deployment.state.__dict__, "bootstrap_nodes": ()}),
            }
        )
        detail = {r.check: r for r in verify(later, now=MOCK_NOW)}["node settings"]
    assert not detail.ok and "still name cluster.initial_master_nodes on a formed cluster" in detail.detail


def test_kibana_not_ready_fails(workdir: Path) -> None:
    assert "Kibana is not ready" in failed(run("dev", cluster_of("dev"), workdir, kibana=503))["kibana"]


def test_kibana_without_its_elasticsearch_connection_fails(workdir: Path) -> None:
    detail = failed(run("dev", cluster_of("dev"), workdir, levels=("degraded", "unavailable")))["kibana"]
    assert "Kibana is degraded; its Elasticsearch connection is unavailable" in detail


def test_a_disabled_kibana_system_user_fails(workdir: Path) -> None:
    assert "disabled" in failed(run("dev", cluster_of("dev", kibana_system_enabled=False), workdir))["kibana_system"]


def test_certificates_inside_the_renewal_window_fail(workdir: Path) -> None:
    with deployed("dev", cluster_of("dev"), workdir) as (deployment, _):
        days = 1095 - 10
        results = {r.check: r for r in verify(deployment, now=MOCK_NOW + datetime.timedelta(days=days))}
    assert not results["certificates"].ok
    assert (
        "expire within 30 days" in results["certificates"].detail
        and "run `pulumi up`" in results["certificates"].detail
    )


def test_the_command_prints_a_line_per_check_and_exits_non_zero_on_a_failure(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with deployed("dev", cluster_of("dev", status="yellow"), workdir) as (_, outputs):
        (workdir / "outputs.json").write_text(json.dumps(outputs))
        code = main(["--outputs", str(workdir / "outputs.json")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split(":")[0] for line in lines] == [
        "ok   https",
        "FAIL health",
        "ok   nodes",
        "ok   node settings",
        "ok   kibana_system",
        "ok   kibana",
        lines[-1].split(":")[0],
    ]


def test_outputs_without_a_state_are_one_failure(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {k: v for k, v in rendered("dev").outputs.items() if k != "cluster_state"}
    (workdir / "outputs.json").write_text(json.dumps(outputs))
    assert main(["--outputs", str(workdir / "outputs.json")]) == 1
    assert (
        capsys.readouterr().out.strip()
        == "FAIL outputs: the stack has no cluster_state: no `pulumi up` of it has completed"
    )


def test_the_elastic_password_never_goes_over_plain_http_to_another_machine() -> None:
    """Kibana serves plain HTTP here; /api/status needs credentials (a redacted status at most without)."""
    assert sends_credentials_safely("https://es.example:9200")
    assert sends_credentials_safely("http://localhost:5601") and sends_credentials_safely("http://127.0.0.1:5601")
    assert sends_credentials_safely("http://[::1]:5601")
    assert not sends_credentials_safely("http://192.168.1.20:5601")
    assert not sends_credentials_safely("http://kibana.example:5601")
