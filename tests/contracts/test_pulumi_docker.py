"""Contracts of pulumi-docker (a bridge of kreuzwerker/terraform-provider-docker) and pulumi-command, as
the program relies on them for containers and one-shot steps."""

from __future__ import annotations

import copy
import re

import pytest

from tests import rules
from tests.conftest import rendered
from tests.harness import Render, stacks_of_target

DOCKER_STACKS = stacks_of_target("docker") + stacks_of_target("swarm")
PERMISSIONS = re.compile(r"^0[0-7]{3}$")


def check_one_shot_steps_fail_the_up_and_run_again(render: Render) -> None:
    """terraform-provider-docker `resource_docker_container_funcs.go` (Create): `attach` waits for the
    container to stop and never looks at its exit code; `exit_code` is only read back on refresh, so a
    failed run-once container neither fails the step nor runs again. pulumi/pulumi-command's local
    Command returns a failed `create` as an error without state: the `up` fails with the command's output
    and the next `up` runs it again. Every one-shot step is therefore a Command."""
    for container in render.of_type(rules.CONTAINER):
        assert not container.inputs.get("attach"), f"{container.name}: an attached container's exit code is ignored"
        assert container.inputs.get("mustRun", True), (
            f"{container.name}: runs once; its failure would stay in the state"
        )
    steps = [
        c
        for c in render.of_type(rules.COMMAND)
        if rules.docker_argv(str(c.inputs.get("create")))[:2] == ["docker", "run"]
    ]
    assert len(steps) == 1, f"{len(steps)} setup steps"
    assert "--rm" in rules.docker_argv(str(steps[0].inputs["create"])), "the step's container would be left behind"


def check_health_gated_containers(render: Render) -> None:
    """terraform-provider-docker Create, `wait`: polls until the container's health is `healthy`, and
    errors when there is no healthcheck ("you have supplied a 'wait' argument, but the container does not
    have a healthcheck defined"); `wait_timeout` defaults to 60 s, too short for a node's first start."""
    for container in render.of_type(rules.CONTAINER):
        if not container.inputs.get("wait"):
            continue
        check = container.inputs.get("healthcheck", {})
        assert check.get("tests"), f"{container.name}: `wait` without a healthcheck"
        assert int(container.inputs.get("waitTimeout", 60)) >= 300, (
            f"{container.name}: waits only {container.inputs.get('waitTimeout', 60)} s"
        )


def check_uploads(render: Render) -> None:
    """terraform-provider-docker's schema: `permissions` matches `^0[0-7]{3}$`, applied as given."""
    for container in render.of_type(rules.CONTAINER):
        for upload in container.inputs.get("uploads", []):
            assert PERMISSIONS.match(str(upload.get("permissions", ""))), f"{container.name}: {upload['file']} mode"


CONTRACTS = {
    "one-shot steps": check_one_shot_steps_fail_the_up_and_run_again,
    "health-gated containers": check_health_gated_containers,
    "uploads": check_uploads,
}


@pytest.mark.parametrize("stack", DOCKER_STACKS)
@pytest.mark.parametrize("contract", list(CONTRACTS), ids=str)
def test_docker_stack_keeps_pulumi_dockers_contract(stack: str, contract: str) -> None:
    CONTRACTS[contract](rendered(stack))


def test_an_attached_setup_container_is_caught() -> None:
    """The original defect: the setup job was an attached container, whose failure wedged the stack."""
    result = copy.deepcopy(rendered("dev"))
    result.named("dev-es-0").inputs["attach"] = True
    with pytest.raises(AssertionError, match="an attached container's exit code is ignored"):
        check_one_shot_steps_fail_the_up_and_run_again(result)


def test_wait_without_a_healthcheck_is_caught() -> None:
    result = copy.deepcopy(rendered("dev"))
    del result.named("dev-kibana-0").inputs["healthcheck"]
    with pytest.raises(AssertionError, match="`wait` without a healthcheck"):
        check_health_gated_containers(result)


def test_a_decimal_upload_mode_is_caught() -> None:
    result = copy.deepcopy(rendered("dev"))
    result.named("dev-es-0").inputs["uploads"][0]["permissions"] = "444"
    with pytest.raises(AssertionError, match="elasticsearch\\.yml mode"):
        check_uploads(result)
