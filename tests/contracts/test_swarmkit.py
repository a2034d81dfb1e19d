"""Contracts of swarmkit, the swarm's manager: what it accepts as a service spec, config and secret."""

from __future__ import annotations

import copy
import re

import pytest

from components.swarm.objects import AUTONAME_SUFFIX
from tests import rules_swarm
from tests.conftest import rendered
from tests.harness import Render, stacks_of_target

SWARM_STACKS = stacks_of_target("swarm")
# moby/swarmkit manager/controlapi/common.go
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$")
MAX_SERVICE_NAME = 63
OBJECT_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")
MAX_OBJECT_NAME = 64
MIN_MEMORY_BYTES = 4 * 1024 * 1024


def check_references(render: Render) -> None:
    """moby/swarmkit `manager/controlapi/service.go` validateConfigRefsSpec / validateSecretRefsSpec: a
    reference without its object's name or id is "malformed", a file target must have a name, and two
    references of one kind with the same target conflict; checkConfigExistence / checkSecretExistence
    want the name to be the object's own."""
    by_id = {r.id: r for r in render.of_type(rules_swarm.SECRET) + render.of_type(rules_swarm.CONFIG)}
    for service in render.of_type(rules_swarm.SERVICE):
        spec = rules_swarm.container_spec(service)
        for kind, id_key, name_key in (("configs", "configId", "configName"), ("secrets", "secretId", "secretName")):
            targets = []
            for reference in spec.get(kind, []):
                assert reference.get(id_key) and reference.get(name_key), (
                    f"{service.name}: {kind} reference without its name or id (swarmkit: malformed reference)"
                )
                source = by_id[reference[id_key]]
                assert source.outputs.get("name") == reference[name_key], (
                    f"{service.name}: {reference[name_key]} is not {source.name}'s name"
                )
                assert reference.get("fileName"), f"{service.name}: {kind} reference without a target file"
                targets.append(reference["fileName"])
            assert len(targets) == len(set(targets)), f"{service.name}: two {kind} share a target"


def check_names(render: Render) -> None:
    """moby/swarmkit `manager/controlapi/common.go`: validateConfigOrSecretAnnotations allows 64
    characters of `[a-zA-Z0-9-_.]`, starting and ending alphanumeric (pulumi-docker's auto-name adds
    "-" and 7 hex characters to the resource name); validateAnnotations allows a service 63 characters
    matching `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`."""
    for resource in render.of_type(rules_swarm.SECRET) + render.of_type(rules_swarm.CONFIG):
        name = resource.inputs.get("name") or f"{resource.name}-{'f' * (AUTONAME_SUFFIX - 1)}"
        assert len(name) <= MAX_OBJECT_NAME, f"{resource.name}: the name {name!r} is over {MAX_OBJECT_NAME} characters"
        assert OBJECT_NAME.match(name), f"{resource.name}: {name!r} is not a swarm config or secret name"
    for service in render.of_type(rules_swarm.SERVICE):
        name = service.inputs["name"]
        assert len(name) <= MAX_SERVICE_NAME and SERVICE_NAME.match(name), f"{name!r} is not a swarm service name"


def check_files_and_resources(render: Render) -> None:
    """moby/moby daemon (`container_operations_unix.go`) parses each reference's File.UID and File.GID as
    numbers (an empty or non-numeric one fails the task's start); swarmkit validateResources wants a memory
    limit of at least 4 MiB."""
    for service in render.of_type(rules_swarm.SERVICE):
        spec = rules_swarm.container_spec(service)
        for reference in spec.get("configs", []) + spec.get("secrets", []):
            for key in ("fileUid", "fileGid"):
                assert str(reference.get(key, "")).isdigit(), (
                    f"{service.name}: {key} {reference.get(key)!r} is no number"
                )
        limit = service.inputs["taskSpec"].get("resources", {}).get("limits", {}).get("memoryBytes")
        assert limit is None or limit >= MIN_MEMORY_BYTES, f"{service.name}: memory limit {limit} under 4 MiB"


def check_host_ports(render: Render) -> None:
    """moby/swarmkit `manager/scheduler/filter.go` HostPortFilter: a task publishing a host-mode port is
    placed only on a node where no other task publishes it; pinned to one node, it would stay pending.
    (controlapi's checkPortConflicts leaves host-mode ports to the scheduler.)"""
    taken: dict[tuple[str, int], str] = {}
    for service in render.of_type(rules_swarm.SERVICE):
        ports = service.inputs.get("endpointSpec", {}).get("ports", [])
        published = [int(p["publishedPort"]) for p in ports]
        assert len(published) == len(set(published)), f"{service.name}: EndpointSpec: duplicate published ports"
        for port in ports:
            if port.get("publishMode") != "host":
                continue
            for node in rules_swarm.swarm_nodes_of(render, service):
                where = (node, int(port["publishedPort"]))
                assert where not in taken, f"{service.name} and {taken[where]} publish port {where[1]} on {node}"
                taken[where] = service.name


CONTRACTS = {
    "config and secret references": check_references,
    "names": check_names,
    "file owners and memory": check_files_and_resources,
    "host-mode ports": check_host_ports,
}


@pytest.mark.parametrize("stack", SWARM_STACKS)
@pytest.mark.parametrize("contract", list(CONTRACTS), ids=str)
def test_swarm_stack_keeps_swarmkits_contract(stack: str, contract: str) -> None:
    CONTRACTS[contract](rendered(stack))


def broken() -> Render:
    return copy.deepcopy(rendered("staging"))


def test_a_reference_by_id_alone_is_caught() -> None:
    """The original defect: references carried only ids."""
    result = broken()
    del rules_swarm.container_spec(result.named("staging-es-0"))["configs"][0]["configName"]
    with pytest.raises(AssertionError, match="without its name or id"):
        check_references(result)


def test_a_config_name_over_64_characters_is_caught() -> None:
    """The original defect: `staging-kibana-xpack.encryptedSavedObjects.encryptionKey` plus the auto-name."""
    result = broken()
    config = result.of_type(rules_swarm.SECRET)[0]
    config.name = "staging-kibana-xpack.encryptedSavedObjects.encryptionKey-longer"
    with pytest.raises(AssertionError, match="is over 64 characters"):
        check_names(result)


def test_a_service_name_with_a_dot_is_caught() -> None:
    result = broken()
    result.named("staging-kibana").inputs["name"] = "staging.kibana"
    with pytest.raises(AssertionError, match="is not a swarm service name"):
        check_names(result)


def test_a_non_numeric_file_owner_is_caught() -> None:
    result = broken()
    rules_swarm.container_spec(result.named("staging-es-1"))["secrets"][0]["fileUid"] = "elasticsearch"
    with pytest.raises(AssertionError, match="fileUid 'elasticsearch' is no number"):
        check_files_and_resources(result)


def test_two_services_publishing_one_host_port_on_a_node_is_caught() -> None:
    result = copy.deepcopy(rendered("swarm-groups"))
    data = result.named("swg-data-0")
    data.inputs["endpointSpec"]["ports"][0]["publishedPort"] = 9200
    with pytest.raises(AssertionError, match="publish port 9200 on swarm-a"):
        check_host_ports(result)
