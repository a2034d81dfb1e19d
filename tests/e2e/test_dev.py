"""The `dev` leg: one node and Kibana on the local Docker engine, changed in place, destroyed, its data kept.
Names and ports are the e2e's own, beside any real `dev` on the engine."""

from __future__ import annotations

from tests.e2e import legs
from tests.e2e.deploy import Project, check, docker, failures, request, up


def test_dev_up_change_verify_destroy(pulumi_cli: None, docker_engine: None, project: Project) -> None:
    stack = project.stack("e2e-dev", legs.dev())
    volume = f"{legs.DEV_CLUSTER}-es-0-data"
    try:
        outputs = up(stack)
        assert failures(check(outputs, "dev")) == []
        request(outputs, "PUT", "/e2e/_doc/1?refresh=true", {"kept": "through a restart"})

        # A heap change restarts the node behind its gate; the second `up` also drops the bootstrap list.
        stack = project.stack("e2e-dev", legs.dev(heap="768m"))
        outputs = up(stack)
        assert failures(check(outputs, "dev")) == []
        assert request(outputs, "GET", "/e2e/_doc/1")["_source"] == {"kept": "through a restart"}

        stack.destroy(on_output=print, color="never")
        assert docker("volume", "inspect", volume, check=False).returncode == 0, "destroy removed the data"
    finally:
        stack.destroy(color="never")
        stack.workspace.remove_stack("e2e-dev")
        docker("volume", "rm", "--force", volume, check=False)
