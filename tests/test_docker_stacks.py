"""Every example stack, rendered by the real __main__.py under mocks, against docs/rules.md and the provider schema."""

from __future__ import annotations

import shlex

import pytest

from tests import rules
from tests.conftest import rendered
from tests.docker_schema import schema_errors
from tests.harness import PROJECT, Render, read_stack_config, render, stacks_in_repo, stacks_of_target


@pytest.mark.parametrize("rule", list(rules.DOCKER_RULES), ids=str)
def test_stack_satisfies_rule(stack_render: Render, rule: str) -> None:
    rules.DOCKER_RULES[rule](stack_render)


def test_ports_bound_to_the_configured_address(stack_render: Render) -> None:
    config = read_stack_config(stack_render.stack)
    hosts = config.get(f"{PROJECT}:docker_hosts")
    if hosts:
        rules.check_across_hosts(stack_render, {h["engine"]: h["address"] for h in hosts})
    else:
        exposure = config.get(f"{PROJECT}:exposure", {})
        rules.check_network_and_ports(stack_render, str(exposure.get("bind_address", "127.0.0.1")))


def test_docker_inputs_match_provider_schema(stack_render: Render) -> None:
    errors = [
        error
        for resource in stack_render.resources
        if resource.type.startswith("docker:")
        for error in schema_errors(resource.type, resource.inputs)
    ]
    assert errors == []


def test_example_stacks_exist() -> None:
    assert {"dev", "lab", "compose3"} <= set(stacks_of_target("docker"))
    # The swarm and kubernetes stacks have their own suites (test_swarm.py, test_kubernetes.py).
    others = set(stacks_of_target("swarm")) | set(stacks_of_target("kubernetes"))
    assert {"staging", "prod"} <= others
    assert set(stacks_in_repo()) == set(stacks_of_target("docker")) | others, "a stack no test renders"


def test_dev_stack_is_one_node_and_kibana_on_loopback() -> None:
    dev = rendered("dev")
    nodes = rules.es_containers(dev)
    assert len(nodes) == 1
    assert rules.es_settings(nodes[0])["discovery.type"] == "single-node"
    published = {
        (p["ip"], p["external"], p["internal"])
        for c in rules.es_containers(dev) + rules.kibana_containers(dev)
        for p in c.inputs.get("ports", [])
    }
    assert published == {("127.0.0.1", 9200, 9200), ("127.0.0.1", 5601, 5601)}
    assert dev.outputs["elasticsearch_url"] == "https://127.0.0.1:9200"
    assert dev.outputs["kibana_url"] == "http://127.0.0.1:5601"
    assert dev.outputs["ca_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert {"elastic_password"} == dev.secret_outputs


def test_compose_topology_is_three_master_eligible_nodes_bootstrapped_together() -> None:
    compose = rendered("compose3")
    settings = [rules.es_settings(c) for c in rules.es_containers(compose)]
    names = sorted(s["node.name"] for s in settings)
    assert len(names) == 3
    for s in settings:
        assert "master" in s["node.roles"]
        assert sorted(s["cluster.initial_master_nodes"]) == names
        assert sorted(s["discovery.seed_hosts"]) == names
        assert "discovery.type" not in s


def test_only_one_node_publishes_http_and_kibana_instances_take_consecutive_ports() -> None:
    mixed = rendered("mixed")
    http = [c.name for c in rules.es_containers(mixed) if c.inputs.get("ports")]
    assert http == ["mixed-master-0"]
    kibana_ports = sorted(p["external"] for c in rules.kibana_containers(mixed) for p in c.inputs["ports"])
    assert kibana_ports == [5601, 5602]


def test_certificate_of_node_published_on_lan_address_names_that_address() -> None:
    mixed = rendered("mixed")
    request = mixed.named("mixed-master-0-csr")
    assert "192.168.10.5" in request.inputs["ipAddresses"]
    other = mixed.named("mixed-data-0-csr")
    assert "192.168.10.5" not in other.inputs["ipAddresses"]


def test_memory_lock_follows_config() -> None:
    def memlocked(render: Render) -> set[bool]:
        return {any(u["name"] == "memlock" for u in c.inputs.get("ulimits", [])) for c in rules.es_containers(render)}

    assert memlocked(rendered("dev")) == {True}
    assert memlocked(rendered("mixed")) == {False}
    assert {rules.es_settings(c)["bootstrap.memory_lock"] for c in rules.es_containers(rendered("mixed"))} == {False}


def test_data_volumes_survive_destroy_and_are_named_after_their_node() -> None:
    for stack in (rendered("dev"), rendered("compose3")):
        for node in rules.es_containers(stack):
            volume = stack.named(f"{node.name}-data")
            assert volume.retain_on_delete
            assert volume.inputs["name"] == f"{node.name}-data"


def test_nodes_setup_step_and_kibana_start_together() -> None:
    compose = rendered("compose3")
    by_urn = compose.by_urn()
    setup = compose.named("docker-cluster-setup")
    assert setup.type == rules.COMMAND
    waiting = {r.urn for r in compose.resources if rules.resource_waits(r)}
    assert setup.urn in waiting
    for resource in [setup, *rules.es_containers(compose), *rules.kibana_containers(compose)]:
        assert not set(resource.dependencies) & waiting, f"{resource.name} waits for another workload"
    assert rules.NETWORK in {by_urn[d].type for d in setup.dependencies}, "the setup step joins the network"
    assert rules.wait_chain_length(compose) == 1


def test_the_local_setup_step_talks_to_the_providers_engine() -> None:
    """pulumi-docker's default provider uses `docker:host`, else DOCKER_HOST, else the local socket, where
    the docker CLI would follow its `docker context`: the step names the provider's engine."""
    assert rendered("dev").named("dev-setup").inputs["environment"] == {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    config = read_stack_config("dev")
    config.update({"docker:host": "tcp://10.0.0.5:2376", "docker:certPath": "/certs"})
    assert render("dev", config).named("dev-setup").inputs["environment"] == {
        "DOCKER_HOST": "tcp://10.0.0.5:2376",
        "DOCKER_CERT_PATH": "/certs",
        "DOCKER_TLS_VERIFY": "1",
    }


def test_setup_step_runs_in_a_throwaway_container_on_the_cluster_network() -> None:
    setup = rendered("dev").named("dev-setup")
    argv = shlex.split(setup.inputs["create"])
    assert argv[:4] == ["docker", "run", "--rm", "--interactive"]
    assert argv[argv.index("--network") + 1] == "dev-net"
    image = "docker.elastic.co/elasticsearch/elasticsearch:9.5.2"
    assert argv[argv.index("--entrypoint") + 1 :][:3] == ["bash", image, "-c"]
    script = argv[-1]
    assert "/_security/user/$2/_password" in script
    assert 'set_password "$url" elastic' in script and 'set_password "$url" kibana_system' in script
    assert "https://dev-es-0:9200" in script
    # The secrets come on standard input, as a Pulumi secret, and never in the command line.
    assert setup.input_is_secret("stdin") and not setup.input_is_secret("create")


def test_containers_wait_for_health() -> None:
    for container in rules.es_containers(rendered("dev")) + rules.kibana_containers(rendered("dev")):
        assert container.inputs["wait"] is True
        assert container.inputs["healthcheck"]["tests"][0] == "CMD-SHELL"


def test_outputs_use_localhost_when_bound_to_all_addresses() -> None:
    config = read_stack_config("dev")
    config[f"{PROJECT}:exposure"] = {"bind_address": "0.0.0.0", "http_port": 9200}
    result = render("dev", config)
    assert result.outputs["elasticsearch_url"] == "https://localhost:9200"
