"""A bad stack config stops the real program with one message naming the key path and the reason,
before any resource is registered."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from escluster.load import ConfigError
from tests import rules
from tests.harness import PROJECT, read_stack_config, render, render_failure

CLUSTER = f"{PROJECT}:cluster"


def dev_config() -> dict[str, Any]:
    return copy.deepcopy(read_stack_config("dev"))


def with_group(**changes: Any) -> dict[str, Any]:
    config = dev_config()
    config[CLUSTER]["node_groups"][0].update(changes)
    return config


def fails_with(config: dict[str, Any], *fragments: str, secret_keys: list[str] | None = None) -> str:
    error, partial = render_failure("dev", config, secret_keys)
    assert isinstance(error, ConfigError), f"expected ConfigError, got {error!r}"
    message = str(error)
    assert message.startswith("Pulumi.dev.yaml: ")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert partial.resources == [], "resources were registered before validation failed"
    return message


def test_unknown_top_level_key() -> None:
    config = dev_config()
    config[f"{PROJECT}:clustr"] = {"name": "x"}
    fails_with(config, "clustr: unknown key")


def test_unknown_nested_key() -> None:
    fails_with(with_group(colour="blue"), "cluster.node_groups[0].colour: unknown key")


def test_missing_cluster() -> None:
    config = dev_config()
    del config[CLUSTER]
    fails_with(config, "cluster: required key is missing")


def test_empty_node_group_name() -> None:
    fails_with(with_group(name=""), "cluster.node_groups[0].name:", "is not a DNS label")


def test_node_group_name_not_a_dns_label() -> None:
    fails_with(with_group(name="Hot_Nodes"), "cluster.node_groups[0].name: 'Hot_Nodes' is not a DNS label")


def test_cluster_name_not_a_dns_label() -> None:
    config = dev_config()
    config[CLUSTER]["name"] = "my cluster"
    fails_with(config, "cluster.name: 'my cluster' is not a DNS label")


def test_node_name_too_long_for_a_dns_label() -> None:
    config = dev_config()
    config[CLUSTER]["name"] = "c" * 41  # c…c-g…g-0 is 64 characters
    fails_with(with_group_in(config, name="g" * 20), "cluster.node_groups[0].name: node name", "longer than 63")


def with_group_in(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    config[CLUSTER]["node_groups"][0].update(changes)
    return config


def test_duplicate_node_group_names() -> None:
    config = dev_config()
    config[CLUSTER]["node_groups"].append({"name": "es", "count": 1, "roles": ["data"]})
    fails_with(config, "cluster.node_groups[1].name: 'es' is used by another node group")


def test_no_node_groups() -> None:
    config = dev_config()
    config[CLUSTER]["node_groups"] = []
    fails_with(config, "cluster.node_groups:", "at least 1 item")


def test_no_master_eligible_node() -> None:
    fails_with(with_group(roles=["data", "ingest"]), "cluster.node_groups: no master-eligible node")


def test_only_voting_only_masters() -> None:
    fails_with(with_group(roles=["master", "voting_only"]), "no master-eligible node")


def test_voting_only_without_master() -> None:
    fails_with(
        with_group(roles=["data", "voting_only"]), "cluster.node_groups[0].roles: voting_only needs the master role"
    )


def test_unknown_role() -> None:
    fails_with(with_group(roles=["master", "cook"]), "cluster.node_groups[0].roles[1]:", "'master'")


def test_single_node_mode_with_more_than_one_node() -> None:
    config = with_group(count=3)
    config[CLUSTER]["single_node"] = True
    fails_with(config, "cluster.single_node: single-node mode needs exactly one node, the cluster has 3")


def test_negative_count() -> None:
    fails_with(with_group(count=-1), "cluster.node_groups[0].count: Input should be greater than or equal to 0")


def test_all_counts_zero() -> None:
    fails_with(with_group(count=0), "cluster.node_groups: the cluster has no nodes")


def test_heap_above_half_the_memory_limit() -> None:
    fails_with(
        with_group(memory="2g", heap="1025m"),
        "cluster.node_groups[0].heap: 1025m is more than 50% of the memory limit 2g",
    )


def test_heap_above_31g() -> None:
    fails_with(with_group(memory="64g", heap="32g"), "cluster.node_groups[0].heap: 32g is above 31g")


def test_heap_not_a_size() -> None:
    fails_with(with_group(heap="lots"), "cluster.node_groups[0].heap: 'lots' is not a size")


def test_heap_as_a_bare_number() -> None:
    fails_with(with_group(heap=1024), "cluster.node_groups[0].heap: 1024 is not a size")


def test_memory_below_floor() -> None:
    fails_with(with_group(memory="512m"), "cluster.node_groups[0].memory: 512m is below the floor of 1g")


def test_kibana_memory_below_floor() -> None:
    config = dev_config()
    config[f"{PROJECT}:kibana"]["memory"] = "256m"
    fails_with(config, "kibana.memory: 256m is below the floor of 1g")


def test_unsupported_version() -> None:
    config = dev_config()
    config[CLUSTER]["version"] = "7.17.0"
    fails_with(config, "cluster.version: version 7.17.0 is not supported; use 8.0.0 or newer")


@pytest.mark.parametrize("version", ["latest", "9.5", "9.5.2-SNAPSHOT", "9.5.2+build1", "09.5.2"])
def test_version_not_a_release(version: str) -> None:
    """Elastic's images are tagged with release versions only (docker.elastic.co/elasticsearch/elasticsearch:9.5.2)."""
    config = dev_config()
    config[CLUSTER]["version"] = version
    fails_with(config, f"cluster.version: {version!r} is not a release version")


def test_kibana_newer_than_elasticsearch() -> None:
    config = dev_config()
    config[CLUSTER]["version"] = "9.1.0"
    config[f"{PROJECT}:kibana"]["version"] = "9.2.0"
    fails_with(config, "kibana.version: Kibana 9.2.0 cannot run against Elasticsearch 9.1.0")


@pytest.mark.parametrize("port", [0, 65536, -80])
def test_port_outside_range(port: int) -> None:
    config = dev_config()
    config[f"{PROJECT}:exposure"]["http_port"] = port
    fails_with(config, "exposure.http_port: Input should be")


def test_kibana_port_outside_range() -> None:
    config = dev_config()
    config[f"{PROJECT}:kibana"]["port"] = 70000
    fails_with(config, "kibana.port: Input should be less than or equal to 65535")


def test_host_port_used_twice() -> None:
    config = dev_config()
    config[f"{PROJECT}:kibana"]["port"] = 9200
    fails_with(config, "kibana.port: host port 9200 is already published by exposure.http_port")


def test_kibana_replicas_running_into_another_port() -> None:
    config = dev_config()
    config[f"{PROJECT}:kibana"].update({"replicas": 3, "port": 9198})
    fails_with(config, "kibana.port: host port 9200 is already published by exposure.http_port")


def test_bind_address_not_an_ip() -> None:
    config = dev_config()
    config[f"{PROJECT}:exposure"]["bind_address"] = "localhost"
    fails_with(config, "exposure.bind_address: 'localhost' is not an IP address")


def test_zero_kibana_replicas() -> None:
    config = dev_config()
    config[f"{PROJECT}:kibana"]["replicas"] = 0
    fails_with(config, "kibana.replicas: Input should be greater than or equal to 1")


def test_short_password() -> None:
    config = dev_config()
    config[f"{PROJECT}:security"] = {"kibana_system_password": "12345"}
    fails_with(
        config,
        "security.kibana_system_password: Value should have at least 6 items",
        secret_keys=[f"{PROJECT}:security"],
    )


def test_password_not_stored_as_secret() -> None:
    config = dev_config()
    config[f"{PROJECT}:security"] = {"elastic_password": "correct-horse"}
    message = fails_with(config, "security: passwords must be stored encrypted", "pulumi config set --secret")
    assert "correct-horse" not in message


def test_placement_on_single_engine_target() -> None:
    fails_with(with_group(placement=["host-a"]), "cluster.node_groups[0].placement: nodes are placed on docker_hosts")


def test_memory_lock_on_swarm() -> None:
    config = dev_config()
    config[f"{PROJECT}:target"] = "swarm"
    config[CLUSTER]["memory_lock"] = True
    fails_with(config, "cluster.memory_lock: Swarm services cannot set the memlock ulimit")


def test_unknown_target() -> None:
    config = dev_config()
    config[f"{PROJECT}:target"] = "nomad"
    fails_with(config, "target: Input should be 'docker', 'swarm' or 'kubernetes'")


def test_every_problem_is_listed_in_one_message() -> None:
    config = with_group(count=-2, heap="huge")
    config[CLUSTER]["version"] = "6.8.0"
    message = fails_with(config, "count:", "heap:", "version:")
    assert len(message.splitlines()) == 4


@pytest.mark.parametrize("size", ["50G", "2GB", "512M", "4gb"])
def test_a_size_whose_unit_targets_read_differently_is_refused(size: str) -> None:
    fails_with(with_group(memory=size), f"cluster.node_groups[0].memory: '{size}' is ambiguous", "powers of 1024")


@pytest.mark.parametrize(
    ("size", "heap"), [("4g", "-Xms2g -Xmx2g"), ("4Gi", "-Xms2g -Xmx2g"), ("3072m", "-Xms1536m -Xmx1536m")]
)
def test_binary_sizes_mean_the_same_everywhere(size: str, heap: str) -> None:
    node = render("dev", with_group(memory=size)).named("dev-es-0")
    assert rules.env(node)["ES_JAVA_OPTS"] == heap


@pytest.mark.parametrize("namespace", ["elastic", "elasticstack", "es"])
def test_our_keys_under_another_namespace_are_reported(namespace: str) -> None:
    config = dev_config()
    config[f"{namespace}:kibana"] = config.pop(f"{PROJECT}:kibana")
    fails_with(config, f"{namespace}:kibana: the program reads `elastic-stack:kibana`")


def test_provider_namespaces_are_left_alone() -> None:
    config = dev_config()
    config["docker:host"] = "unix:///var/run/docker.sock"
    config["kubernetes:context"] = "kind-kind"
    assert render("dev", config).resources


@pytest.mark.parametrize(
    ("engine", "reason"),
    [
        ("ssh://elastic:pw@10.0.0.1", "a password in the URL is refused"),
        ("ssh://elastic@10.0.0.1/var/run/docker.sock", "without a path"),
        ("ssh://elastic@10.0.0.1?x=1", "without a path, query or fragment"),
        ("tcp://10.0.0.1", "give the port"),
        ("unix://docker.sock", "absolute socket path"),
        ("http://10.0.0.1:2375", "is not a Docker engine URL"),
        ("ssh://", "is not a host name"),
    ],
)
def test_engine_urls_no_docker_client_can_use_are_refused(engine: str, reason: str) -> None:
    config = dev_config()
    config[f"{PROJECT}:docker_hosts"] = [{"name": "a", "engine": engine, "address": "10.0.0.1", "cert_path": "/c"}]
    fails_with(config, "docker_hosts[0].engine:", reason)


def test_a_validity_inside_three_renewal_windows_is_refused() -> None:
    """pulumi-tls makes a certificate anew once it is inside early_renewal_hours (30 days): with a validity of
    30 days or less every `up` would renew every node."""
    config = dev_config()
    config[f"{PROJECT}:security"] = {"cert_validity_days": 30}
    fails_with(config, "security.cert_validity_days:", "greater than or equal to 90")
