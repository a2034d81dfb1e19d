"""The `lab` stack: one cluster across Docker hosts, bootstrap once, and what a change may touch."""

from __future__ import annotations

import copy
import shlex
from collections.abc import Callable
from typing import Any

import pytest

from tests import rules
from tests.conftest import rendered
from tests.harness import PROJECT, Registration, Render, read_stack_config, render, render_failure

CLUSTER = f"{PROJECT}:cluster"
MASTERS = ["lab-es-0", "lab-es-1", "lab-es-2"]
ES_TYPES = {
    rules.CONTAINER,
    rules.VOLUME,
    "docker:index/remoteImage:RemoteImage",
    "tls:index/privateKey:PrivateKey",
    "tls:index/certRequest:CertRequest",
    "tls:index/locallySignedCert:LocallySignedCert",
}


def lab_config(edit: Callable[[dict[str, Any]], None] | None = None, bootstrapped: bool = True) -> dict[str, Any]:
    config = copy.deepcopy(read_stack_config("lab"))
    if bootstrapped:
        config[CLUSTER].update({"bootstrapped": True, "initial_master_nodes": MASTERS})
    if edit:
        edit(config)
    return config


def lab(edit: Callable[[dict[str, Any]], None] | None = None, bootstrapped: bool = True) -> Render:
    return render("lab", lab_config(edit, bootstrapped))


def settings_by_node(result: Render) -> dict[str, dict[str, Any]]:
    return {c.name: rules.es_settings(c) for c in rules.es_containers(result)}


def es_resources(result: Render) -> dict[str, Registration]:
    """Every resource of an ES node (container, volume, image, key, certificate), by URN."""
    node_names = {c.name for c in rules.es_containers(result)}
    return {
        r.urn: r
        for r in result.resources
        if r.type in ES_TYPES and any(r.name == n or r.name.startswith(f"{n}-") for n in node_names)
    }


def changed(before: Render, after: Render, urns: set[str] | None = None) -> set[str]:
    """Names of resources present in both renders whose inputs, secrets or options differ."""
    old, new = before.by_urn(), after.by_urn()
    shared = (set(old) & set(new)) if urns is None else urns
    return {
        old[urn].name
        for urn in shared
        if (old[urn].inputs, old[urn].secret_paths, old[urn].provider, old[urn].protect, old[urn].retain_on_delete)
        != (new[urn].inputs, new[urn].secret_paths, new[urn].provider, new[urn].protect, new[urn].retain_on_delete)
    }


# ---- topology ----------------------------------------------------------------------------------


def test_one_node_per_host_each_publishing_its_host_address() -> None:
    by_node = settings_by_node(rendered("lab"))
    assert {s["network.publish_host"] for s in by_node.values()} == {"192.168.56.11", "192.168.56.12", "192.168.56.13"}
    for s in by_node.values():
        assert s["discovery.seed_hosts"] == ["192.168.56.11:9300", "192.168.56.12:9300", "192.168.56.13:9300"]
        assert s["transport.port"] == 9300


def test_one_provider_and_network_per_host() -> None:
    result = rendered("lab")
    engines = sorted(p.inputs["host"] for p in result.of_type("pulumi:providers:docker"))
    assert engines == [f"ssh://elastic@192.168.56.1{i}" for i in (1, 2, 3)]
    assert len({n.provider for n in result.of_type(rules.NETWORK)}) == 3


def test_nodes_sharing_a_host_get_distinct_transport_ports() -> None:
    def two_per_host(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"][0].update({"count": 6})

    result = lab(two_per_host, bootstrapped=False)
    by_node = settings_by_node(result)
    assert by_node["lab-es-0"]["transport.port"] == 9300
    assert by_node["lab-es-3"]["network.publish_host"] == by_node["lab-es-0"]["network.publish_host"]
    assert by_node["lab-es-3"]["transport.port"] == 9301
    ports = rules.published_ports(result.named("lab-es-3"))
    assert ports == {9200: 9201, 9301: 9301}
    rules.check_discovery_and_bootstrap(result)


def test_certificates_name_the_host_address() -> None:
    result = rendered("lab")
    for i, node in enumerate(MASTERS):
        assert f"192.168.56.1{i + 1}" in result.named(f"{node}-csr").inputs["ipAddresses"]


def test_kibana_and_setup_job_reach_every_node_over_published_https() -> None:
    result = rendered("lab")
    urls = [f"https://192.168.56.1{i}:9200" for i in (1, 2, 3)]
    kibana = result.named("lab-kibana-0")
    assert rules.kibana_settings(kibana)["elasticsearch.hosts"] == urls
    ssh = shlex.split(result.named("lab-setup").inputs["create"])
    # Over ssh to the Kibana host (the docker CLI takes no ssh options), its own docker runs the step.
    assert ssh[0] == "ssh" and ssh[ssh.index("--") + 1] == "192.168.56.11"
    assert ssh[ssh.index("-l") + 1] == "elastic"
    remote = shlex.split(ssh[-1])
    assert remote[:2] == ["docker", "run"] and remote[remote.index("--network") + 1] == "lab-net"
    assert all(url in remote[-1] for url in urls)
    assert kibana.provider == result.named("lab-es-0").provider


# ---- bootstrap once ----------------------------------------------------------------------------


def test_new_cluster_bootstraps_from_every_master_eligible_node() -> None:
    for s in settings_by_node(rendered("lab")).values():
        assert s["cluster.initial_master_nodes"] == MASTERS


def test_bootstrapped_cluster_sets_it_on_no_node() -> None:
    for s in settings_by_node(lab()).values():
        assert "cluster.initial_master_nodes" not in s
        assert s["discovery.seed_hosts"], "seeds stay once the bootstrap list is gone"


def test_node_added_later_never_gets_it() -> None:
    def add_master(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"][0]["count"] = 4

    by_node = settings_by_node(lab(add_master))
    assert "cluster.initial_master_nodes" not in by_node["lab-es-3"]
    assert by_node["lab-es-3"]["discovery.seed_hosts"] == by_node["lab-es-0"]["discovery.seed_hosts"]


def test_explicit_bootstrap_list_seeds_discovery_on_a_new_cluster() -> None:
    def two_bootstrap_masters(config: dict[str, Any]) -> None:
        config[CLUSTER]["initial_master_nodes"] = ["lab-es-0", "lab-es-1"]

    for s in settings_by_node(lab(two_bootstrap_masters, bootstrapped=False)).values():
        assert s["cluster.initial_master_nodes"] == ["lab-es-0", "lab-es-1"]
        assert s["discovery.seed_hosts"] == ["192.168.56.11:9300", "192.168.56.12:9300"]


# ---- blast radius ------------------------------------------------------------------------------


def add_data_group(config: dict[str, Any]) -> None:
    config[CLUSTER]["node_groups"].append(
        {"name": "data", "count": 2, "roles": ["data"], "memory": "8g", "placement": ["server2", "server3"]}
    )


def test_adding_a_data_group_changes_no_existing_es_resource() -> None:
    before, after = lab(), lab(add_data_group)
    existing = es_resources(before)
    assert len(es_resources(after)) > len(existing)
    assert changed(before, after, set(existing)) == set()


def test_adding_a_data_node_changes_no_existing_es_resource() -> None:
    def three_data_nodes(config: dict[str, Any]) -> None:
        add_data_group(config)
        config[CLUSTER]["node_groups"][1]["count"] = 3

    before, after = lab(add_data_group), lab(three_data_nodes)
    existing = es_resources(before)
    assert "lab-data-2" in {c.name for c in rules.es_containers(after)}
    assert changed(before, after, set(existing)) == set()


def test_adding_a_master_eligible_node_changes_no_existing_node() -> None:
    # Seeds come from the pinned bootstrap list, and running nodes learn new masters from the
    # cluster state: no existing node needs the new master in its discovery settings.
    before = lab()
    after = lab(lambda c: c[CLUSTER]["node_groups"][0].update(count=4))
    assert changed(before, after, set(es_resources(before))) == set()


def test_kibana_version_or_replicas_change_no_es_resource() -> None:
    before = lab()
    after = lab(lambda c: c[f"{PROJECT}:kibana"].update({"version": "9.5.0", "replicas": 2}))
    assert changed(before, after, set(es_resources(before))) == set()
    assert "lab-kibana-0" in changed(before, after)


def test_rotating_kibana_system_password_touches_only_setup_job_and_kibana() -> None:
    def password(value: str) -> Render:
        config = lab_config(lambda c: c.update({f"{PROJECT}:security": {"kibana_system_password": value}}))
        return render("lab", config, secret_keys=[f"{PROJECT}:security"])

    assert changed(password("first-secret"), password("second-secret")) == {"lab-setup", "lab-kibana-0"}


# ---- validation --------------------------------------------------------------------------------


def group_edit(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda config: config[CLUSTER]["node_groups"][0].update(changes)


def lab_fails(edit: Callable[[dict[str, Any]], None], *fragments: str, bootstrapped: bool = False) -> None:
    error, partial = render_failure("lab", lab_config(edit, bootstrapped))
    message = str(error)
    assert message.startswith("Pulumi.lab.yaml: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert partial.resources == []


def test_placement_on_an_undefined_host() -> None:
    lab_fails(
        group_edit(placement=["server1", "server9"]),
        "cluster.node_groups[0].placement[1]: 'server9' is not a docker host",
    )


def test_two_nodes_on_one_host_with_the_same_published_port() -> None:
    def clash(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"].append(
            {"name": "data", "count": 1, "roles": ["data"], "placement": ["server1"], "transport_port": 9300}
        )

    lab_fails(clash, "cluster.node_groups[1].transport_port: host port 9300 on server1 is already published")


def test_http_port_running_into_kibana_on_its_host() -> None:
    lab_fails(
        lambda c: c[f"{PROJECT}:kibana"].update({"port": 9200}),
        "kibana.port: host port 9200 on server1 is already published by cluster.node_groups[0].http_port",
    )


@pytest.mark.parametrize("address", ["192.168.56.300", "server_1", "-bad.example", "10.0.0", ""])
def test_host_address_neither_ip_nor_dns_name(address: str) -> None:
    lab_fails(
        lambda c: c[f"{PROJECT}:docker_hosts"][0].update({"address": address}),
        "docker_hosts[0].address:",
        "is neither an IP address nor a DNS name",
    )


def test_host_address_may_be_a_dns_name() -> None:
    result = lab(lambda c: c[f"{PROJECT}:docker_hosts"][0].update({"address": "es1.lab.example"}))
    s = rules.es_settings(result.named("lab-es-0"))
    assert s["network.publish_host"] == "es1.lab.example"
    assert "es1.lab.example" in result.named("lab-es-0-csr").inputs["dnsNames"]
    assert {p["ip"] for p in result.named("lab-es-0").inputs["ports"]} == {"0.0.0.0"}


def test_bootstrap_list_longer_than_the_master_eligible_nodes() -> None:
    lab_fails(
        lambda c: c[CLUSTER].update({"initial_master_nodes": [*MASTERS, "lab-es-3"]}),
        "cluster.initial_master_nodes: lists 4 nodes but the cluster has only 3 master-eligible nodes",
    )


def test_bootstrap_list_naming_a_data_node() -> None:
    def data_in_list(config: dict[str, Any]) -> None:
        add_data_group(config)
        config[CLUSTER]["initial_master_nodes"] = ["lab-es-0", "lab-data-0"]

    lab_fails(data_in_list, "cluster.initial_master_nodes: 'lab-data-0' is not a master-eligible node")


def test_an_adopted_cluster_is_seeded_by_its_masters() -> None:
    """`bootstrapped: true` without a pinned list: no node bootstraps, every master seeds discovery."""
    for s in settings_by_node(render("lab", lab_config(lambda c: c[CLUSTER].update({"bootstrapped": True})))).values():
        assert "cluster.initial_master_nodes" not in s
        assert s["discovery.seed_hosts"] == [f"192.168.56.1{i}:9300" for i in (1, 2, 3)]


def test_kibana_on_an_undefined_host() -> None:
    lab_fails(
        lambda c: c[f"{PROJECT}:kibana"].update({"host": "server9"}), "kibana.host: 'server9' is not a docker host"
    )


def test_tcp_engine_without_tls_material() -> None:
    lab_fails(
        lambda c: c[f"{PROJECT}:docker_hosts"][0].update({"engine": "tcp://192.168.56.11:2375"}),
        "docker_hosts[0].cert_path: a tcp:// engine needs TLS material",
    )


def test_engine_url_with_unknown_scheme() -> None:
    lab_fails(
        lambda c: c[f"{PROJECT}:docker_hosts"][0].update({"engine": "http://192.168.56.11"}),
        "docker_hosts[0].engine: 'http://192.168.56.11' is not a Docker engine URL",
    )


def test_duplicate_host_names() -> None:
    lab_fails(
        lambda c: c[f"{PROJECT}:docker_hosts"][1].update({"name": "server1"}),
        "docker_hosts[1].name: 'server1' is used by another host",
    )


def test_no_http_port_across_hosts() -> None:
    lab_fails(lambda c: c[f"{PROJECT}:exposure"].update({"http_port": None}), "exposure.http_port: across hosts")
