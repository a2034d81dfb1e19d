"""Each rule check fails when its rule is broken: good renders, broken on purpose one way at a time.
(The policy pack's rules are broken the same way in tests/test_policy.py.)"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests import rules
from tests.conftest import rendered
from tests.docker_schema import schema_errors
from tests.harness import Render


def broken(stack: str) -> Render:
    return copy.deepcopy(rendered(stack))


def edit_settings(render: Render, container_name: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the elasticsearch.yml or kibana.yml a container gets."""
    container = render.named(container_name)
    config_file = rules.KIBANA_CONFIG if rules.KIBANA_CONFIG in rules.uploads(container) else rules.ES_CONFIG
    index = rules.upload_index(container, config_file)
    settings = yaml.safe_load(container.inputs["uploads"][index]["content"])
    edit(settings)
    container.inputs["uploads"][index]["content"] = yaml.safe_dump(settings)


def fails(check: Callable[[Render], None], render: Render, match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        check(render)


# ---- discovery and bootstrap -----------------------------------------------------------------


def test_single_node_with_initial_master_nodes_is_caught() -> None:
    render = broken("dev")
    edit_settings(render, "dev-es-0", lambda s: s.update({"cluster.initial_master_nodes": ["dev-es-0"]}))
    fails(rules.check_discovery_and_bootstrap, render, "single-node with cluster.initial_master_nodes")


def test_single_node_mode_in_a_multi_node_cluster_is_caught() -> None:
    render = broken("compose3")
    edit_settings(render, "docker-cluster-es-1", lambda s: s.update({"discovery.type": "single-node"}))
    fails(rules.check_discovery_and_bootstrap, render, "single-node in a 3-node cluster")


def test_missing_seed_hosts_is_caught() -> None:
    render = broken("compose3")
    edit_settings(render, "docker-cluster-es-2", lambda s: s.pop("discovery.seed_hosts"))
    fails(rules.check_discovery_and_bootstrap, render, "without discovery.seed_hosts")


def test_seed_host_that_is_no_node_is_caught() -> None:
    render = broken("compose3")
    edit_settings(render, "docker-cluster-es-0", lambda s: s.update({"discovery.seed_hosts": ["es99"]}))
    fails(rules.check_discovery_and_bootstrap, render, "seed host es99")


def test_different_bootstrap_lists_are_caught() -> None:
    render = broken("compose3")
    edit_settings(
        render,
        "docker-cluster-es-0",
        lambda s: s.update({"cluster.initial_master_nodes": ["docker-cluster-es-0"]}),
    )
    fails(rules.check_discovery_and_bootstrap, render, "disagree on cluster.initial_master_nodes")


def test_bootstrap_list_on_data_node_is_caught() -> None:
    render = broken("mixed")
    edit_settings(render, "mixed-data-0", lambda s: s.update({"cluster.initial_master_nodes": ["mixed-master-0"]}))
    fails(rules.check_discovery_and_bootstrap, render, "not master-eligible")


def test_bootstrap_entry_that_is_no_node_is_caught() -> None:
    render = broken("compose3")
    for i in range(3):
        edit_settings(render, f"docker-cluster-es-{i}", lambda s: s.update({"cluster.initial_master_nodes": ["es01"]}))
    fails(rules.check_discovery_and_bootstrap, render, "es01 is not a master-eligible node.name")


def test_only_voting_only_masters_is_caught() -> None:
    render = broken("mixed")
    for name in ("mixed-master-0", "mixed-master-1"):
        edit_settings(render, name, lambda s: s.update({"node.roles": ["master", "voting_only"]}))
    fails(rules.check_discovery_and_bootstrap, render, "no master-eligible node that is not voting-only")


def test_duplicate_node_names_are_caught() -> None:
    render = broken("compose3")
    edit_settings(render, "docker-cluster-es-1", lambda s: s.update({"node.name": "docker-cluster-es-0"}))
    fails(rules.check_discovery_and_bootstrap, render, "not unique")


# ---- security --------------------------------------------------------------------------------


def test_certificate_path_nothing_provides_is_caught() -> None:
    render = broken("dev")
    edit_settings(render, "dev-es-0", lambda s: s.update({"xpack.security.transport.ssl.key": "/nowhere.key"}))
    fails(rules.check_tls_files, render, "/nowhere.key is not provided")


def test_private_key_in_plain_text_is_caught() -> None:
    render = broken("dev")
    container = render.named("dev-es-0")
    container.secret_paths = {p for p in container.secret_paths if p != "uploads[3].content"}
    fails(rules.check_tls_files, render, "private key not secret")


def test_certificate_without_localhost_is_caught() -> None:
    render = broken("dev")
    render.named("dev-es-0-csr").inputs["dnsNames"] = ["dev-es-0"]
    fails(rules.check_certificate_sans, render, "lacks localhost")


def test_certificate_without_published_address_is_caught() -> None:
    render = broken("mixed")
    render.named("mixed-master-0-csr").inputs["ipAddresses"] = ["127.0.0.1"]
    fails(rules.check_certificate_sans, render, "published address 192.168.10.5")


def test_generated_password_in_env_is_caught() -> None:
    render = broken("dev")
    render.named("dev-es-0").inputs["envs"].append("ES_SEED=generated-dev-credentials-elastic")
    fails(rules.check_no_plain_secrets, render, "dev-es-0: envs.* holds a password in plain text")


def test_password_in_plain_upload_is_caught() -> None:
    render = broken("dev")
    render.named("dev-setup").secret_paths.clear()
    fails(rules.check_no_plain_secrets, render, "holds a password in plain text")


def test_password_export_in_plain_text_is_caught() -> None:
    render = broken("dev")
    render.secret_outputs.clear()
    fails(rules.check_no_plain_secrets, render, "stack output elastic_password holds a password")


def test_kibana_as_elastic_superuser_is_caught() -> None:
    render = broken("dev")
    edit_settings(render, "dev-kibana-0", lambda s: s.update({"elasticsearch.username": "elastic"}))
    fails(rules.check_kibana_pairing, render, "not kibana_system")


def test_kibana_pointed_at_no_node_is_caught() -> None:
    render = broken("dev")
    edit_settings(render, "dev-kibana-0", lambda s: s.update({"elasticsearch.hosts": ["https://dev-es-9:9200"]}))
    fails(rules.check_kibana_pairing, render, "https://dev-es-9:9200 is no node's HTTPS address")


def test_kibana_ca_file_nothing_provides_is_caught() -> None:
    render = broken("dev")
    edit_settings(render, "dev-kibana-0", lambda s: s.update({"elasticsearch.ssl.certificateAuthorities": ["/x.crt"]}))
    fails(rules.check_kibana_pairing, render, "the CA file /x.crt is not provided")


# ---- memory ----------------------------------------------------------------------------------


def test_memory_lock_without_memlock_ulimit_is_caught() -> None:
    render = broken("dev")
    node = render.named("dev-es-0")
    node.inputs["ulimits"] = [u for u in node.inputs["ulimits"] if u["name"] != "memlock"]
    fails(rules.check_memory_lock, render, "memlock")


# ---- data, network, order, schema ------------------------------------------------------------


def test_data_volume_deleted_with_the_stack_is_caught() -> None:
    render = broken("dev")
    render.named("dev-es-0-data").retain_on_delete = False
    fails(rules.check_persistent_data, render, "deleted with the stack")


def test_data_outside_a_volume_is_caught() -> None:
    render = broken("dev")
    render.named("dev-es-0").inputs["volumes"] = []
    fails(rules.check_persistent_data, render, "not on a volume")


def test_port_on_all_addresses_is_caught() -> None:
    render = broken("dev")
    render.named("dev-kibana-0").inputs["ports"][0]["ip"] = "0.0.0.0"
    with pytest.raises(AssertionError, match=r"not bound to 127\.0\.0\.1"):
        rules.check_network_and_ports(render, "127.0.0.1")


def test_fixed_name_replaced_create_before_delete_is_caught() -> None:
    render = broken("dev")
    render.named("dev-es-0").delete_before_replace = False
    fails(rules.check_fixed_names_replace_safely, render, "dev-es-0: fixed name without delete_before_replace")


LAB_ENGINES = {f"ssh://elastic@192.168.56.1{i}": f"192.168.56.1{i}" for i in (1, 2, 3)}


def test_lab_passes_the_cross_host_check() -> None:
    rules.check_across_hosts(rendered("lab"), LAB_ENGINES)


def test_wrong_publish_host_is_caught() -> None:
    render = broken("lab")
    edit_settings(render, "lab-es-1", lambda s: s.update({"network.publish_host": "192.168.56.11"}))
    with pytest.raises(AssertionError, match=re.escape("lab-es-1: publish_host is not 192.168.56.12")):
        rules.check_across_hosts(render, LAB_ENGINES)


def test_transport_port_differing_from_the_published_one_is_caught() -> None:
    render = broken("lab")
    edit_settings(render, "lab-es-2", lambda s: s.update({"transport.port": 9301}))
    with pytest.raises(AssertionError, match="published transport port differs"):
        rules.check_across_hosts(render, LAB_ENGINES)


def test_seed_at_a_wrong_port_is_caught() -> None:
    render = broken("lab")
    edit_settings(render, "lab-es-0", lambda s: s.update({"discovery.seed_hosts": ["192.168.56.12:9301"]}))
    fails(rules.check_discovery_and_bootstrap, render, "seed host 192.168.56.12:9301")


def test_es_node_waiting_for_another_is_caught() -> None:
    render = broken("compose3")
    render.named("docker-cluster-es-1").dependencies.append(render.named("docker-cluster-es-0").urn)
    fails(rules.check_deploy_order, render, "waits for another")


def test_a_chain_of_waits_is_caught() -> None:
    render = broken("compose3")
    # The old deploy order: Kibana waits for the setup step, which waits for a node.
    render.named("docker-cluster-kibana-0").dependencies = [render.named("docker-cluster-setup").urn]
    render.named("docker-cluster-setup").dependencies = [render.named("docker-cluster-es-1").urn]
    fails(rules.check_deploy_order, render, "longest chain of waiting resources is 3")


def test_schema_check_catches_unknown_and_missing_inputs() -> None:
    inputs = dict(rendered("dev").named("dev-es-0").inputs)
    inputs["memoryLimit"] = 2048
    del inputs["image"]
    errors = schema_errors(rules.CONTAINER, inputs)
    assert any("memoryLimit: not an input" in e for e in errors)
    assert any("image: required input is missing" in e for e in errors)
    bad_ulimit = {"image": "x", "ulimits": [{"name": "nofile", "soft": "many", "hard": 1}]}
    assert any("soft: expected integer" in e for e in schema_errors(rules.CONTAINER, bad_ulimit))
