"""The swarm leg: `staging` on a one-node swarm of the local engine (`docker swarm init` when the engine
is in none, left again afterwards)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e import legs
from tests.e2e.conftest import unavailable
from tests.e2e.deploy import Project, check, docker, failures, request, up


@pytest.fixture
def swarm_node(docker_engine: None) -> Iterator[str]:
    """The hostname of the local engine's swarm node."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    created = state == "inactive"
    if created:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    elif state != "active" or docker("info", "--format", "{{.Swarm.Nodes}}").stdout.strip() != "1":
        unavailable(f"the engine is in a swarm of more than one node (state {state}); the leg needs its own")
    try:
        yield docker("node", "ls", "--format", "{{.Hostname}}").stdout.split()[0]
    finally:
        if created:
            docker("swarm", "leave", "--force", check=False)


def test_swarm_up_verify_destroy(pulumi_cli: None, swarm_node: str, project: Project) -> None:
    stack = project.stack("e2e-swarm", legs.swarm(swarm_node))
    try:
        outputs = up(stack)
        # The node's certificate names localhost; the swarm node's hostname may not resolve here.
        urls = {"elasticsearch_url": "https://localhost:29200", "kibana_url": "http://localhost:25601"}
        assert failures(check(outputs, "swarm", **urls)) == []
        request(outputs, "PUT", "/e2e/_doc/1?refresh=true", {"on": "swarm"}, url=urls["elasticsearch_url"])
        stack.destroy(on_output=print, color="never")
    finally:
        stack.destroy(color="never")
        stack.workspace.remove_stack("e2e-swarm")
        docker("volume", "rm", "--force", f"{legs.SWARM_CLUSTER}-es-0-data", check=False)
