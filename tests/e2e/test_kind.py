"""The Kubernetes leg: a `prod` variant on a kind cluster, MetalLB installed by the program, its L2 pool
inside kind's Docker network (reachable from the machine running the test on Linux)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e import legs
from tests.e2e.deploy import Project, check, docker, failures, up

KIND_CLUSTER = legs.KIND_CLUSTER


@pytest.fixture
def kind_cluster(docker_engine: None, kind_tools: None) -> Iterator[str]:
    """The kubeconfig context of a kind cluster (created here unless it exists, as in the workflow)."""
    existing = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, check=True).stdout.split()
    created = KIND_CLUSTER not in existing
    if created:
        subprocess.run(["kind", "create", "cluster", "--name", KIND_CLUSTER, "--wait", "180s"], check=True)
    try:
        yield f"kind-{KIND_CLUSTER}"
    finally:
        if created:
            subprocess.run(["kind", "delete", "cluster", "--name", KIND_CLUSTER], check=False)


def kind_pool() -> tuple[str, str, str]:
    """A range at the top of kind's IPv4 network, and two fixed IPs in it."""
    configs = json.loads(docker("network", "inspect", "kind").stdout)[0]["IPAM"]["Config"]
    subnet = next(ipaddress.ip_network(c["Subnet"]) for c in configs if ":" not in c["Subnet"])
    last = subnet.broadcast_address
    first = last - 50
    return f"{first}-{last - 1}", str(first), str(first + 1)


def test_kind_up_verify_destroy(pulumi_cli: None, kind_cluster: str, project: Project) -> None:
    addresses, es_ip, kibana_ip = kind_pool()
    stack = project.stack("e2e-kind", legs.kind(kind_cluster, addresses, es_ip, kibana_ip))
    try:
        outputs = up(stack)
        assert outputs["elasticsearch_url"] == f"https://{es_ip}:9200"
        assert failures(check(outputs, "kind")) == []
        stack.destroy(on_output=print, color="never")
    finally:
        stack.destroy(color="never")
        stack.workspace.remove_stack("e2e-kind")
