"""The `staging` stack on Docker Swarm: labels, pinned dnsrr services, configs and secrets."""

from __future__ import annotations

import base64
import copy
import shlex
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from escluster.config import StackConfig
from tests import rules, rules_swarm
from tests.conftest import rendered
from tests.docker_schema import schema_errors
from tests.harness import PROJECT, Render, read_stack_config, render, render_failure, stacks_of_target

SWARM = f"{PROJECT}:swarm"
CLUSTER = f"{PROJECT}:cluster"


@pytest.mark.parametrize("stack", stacks_of_target("swarm"))
@pytest.mark.parametrize("rule", list(rules_swarm.SWARM_RULES), ids=str)
def test_swarm_stack_satisfies_rule(stack: str, rule: str) -> None:
    rules_swarm.SWARM_RULES[rule](rendered(stack))


def test_docker_inputs_match_provider_schema() -> None:
    result = rendered("staging")
    errors = [e for r in result.resources if r.type.startswith("docker:") for e in schema_errors(r.type, r.inputs)]
    assert errors == []


PLACES = ["server=a", "server=b", "server=c"]
SSH_TO_MANAGER = "ssh -l elastic -o BatchMode=yes -T -- 192.168.56.21"


def test_labels_applied_to_each_swarm_node_through_the_manager() -> None:
    commands = {
        c.name: c.inputs for c in rendered("staging").of_type(rules_swarm.COMMAND) if c.name.startswith("label-")
    }
    label = commands["label-swarm-2-server"]
    assert label["create"] == f"{SSH_TO_MANAGER} 'docker node update --label-add server=b swarm-2'"
    assert f"{SSH_TO_MANAGER} 'docker node update --label-rm server swarm-2'" in label["delete"]
    assert len(commands) == 3


def test_ssh_options_reach_the_label_and_setup_commands() -> None:
    result = render("staging", staging(lambda c: c[SWARM].update(ssh_opts=["-i", "/keys/swarm", "-p", "2222"])))
    for command in result.of_type(rules_swarm.COMMAND):
        assert command.inputs["create"].startswith("ssh -i /keys/swarm -p 2222 -l elastic"), command.name


def test_a_tcp_manager_is_reached_by_the_local_docker_cli_with_its_tls_material() -> None:
    result = render(
        "staging", staging(lambda c: c[SWARM].update(manager="tcp://192.168.56.21:2376", cert_path="/certs"))
    )
    for command in result.of_type(rules_swarm.COMMAND):
        assert command.inputs["create"].startswith("docker "), command.name
        assert command.inputs["environment"] == {
            "DOCKER_HOST": "tcp://192.168.56.21:2376",
            "DOCKER_CERT_PATH": "/certs",
            "DOCKER_TLS_VERIFY": "1",
        }


def test_each_es_service_is_pinned_to_its_own_label() -> None:
    result = rendered("staging")
    constraints = {s.name: s.inputs["taskSpec"]["placement"]["constraints"] for s in rules_swarm.es_services(result)}
    assert constraints == {
        "staging-es-0": ["node.labels.server==a"],
        "staging-es-1": ["node.labels.server==b"],
        "staging-es-2": ["node.labels.server==c"],
    }


def test_secrets_reach_services_as_swarm_secrets_only() -> None:
    result = rendered("staging")
    es = result.named("staging-es-1")
    assert set(rules_swarm.container_spec(es)["env"]) == {"ES_JAVA_OPTS"}
    provided = rules_swarm.files(result, es)
    users, source = provided["/usr/share/elasticsearch/config/users"]
    assert source.type == rules_swarm.SECRET and users.startswith("escluster-admin:$2a$10$")
    kibana = result.named("staging-kibana")
    kibana_files = rules_swarm.files(result, kibana)
    assert {p for p, (_, src) in kibana_files.items() if src.type == rules_swarm.SECRET} == {
        f"/run/secrets/kibana/{entry}"
        for entry in (
            "elasticsearch.password",
            "xpack.security.encryptionKey",
            "xpack.encryptedSavedObjects.encryptionKey",
            "xpack.reporting.encryptionKey",
        )
    }


def test_setup_step_joins_the_overlay_through_the_manager_and_nobody_waits_for_it() -> None:
    result = rendered("staging")
    setup, kibana = result.named("staging-setup"), result.named("staging-kibana")
    assert setup.type == rules.COMMAND
    remote = shlex.split(shlex.split(setup.inputs["create"])[-1])
    assert remote[:2] == ["docker", "run"] and remote[remote.index("--network") + 1] == "staging-overlay"
    assert setup.urn not in kibana.dependencies
    assert rules.wait_chain_length(result) == 1


def test_kibana_on_the_ingress_mesh_and_memory_limited() -> None:
    kibana = rendered("staging").named("staging-kibana")
    assert kibana.inputs["endpointSpec"]["ports"] == [
        {"targetPort": 5601, "publishedPort": 5601, "publishMode": "ingress"}
    ]
    assert kibana.inputs["taskSpec"]["resources"]["limits"]["memoryBytes"] == 1024**3


def test_memory_lock_defaults_off_on_swarm() -> None:
    for service in rules_swarm.es_services(rendered("staging")):
        assert rules_swarm.es_settings(rendered("staging"), service)["bootstrap.memory_lock"] is False


def test_http_published_on_the_pinned_node_named_in_its_certificate() -> None:
    result = rendered("staging")
    assert result.named("staging-es-0").inputs["endpointSpec"]["ports"] == [
        {"targetPort": 9200, "publishedPort": 9200, "publishMode": "host"}
    ]
    assert "swarm-1" in result.named("staging-es-0-csr").inputs["dnsNames"]
    assert result.outputs["elasticsearch_url"] == "https://swarm-1:9200"


# ---- the rules catch a broken stack ------------------------------------------------------------


def broken() -> Render:
    return copy.deepcopy(rendered("staging"))


def test_unlabelled_constraint_is_caught() -> None:
    result = broken()
    result.named("staging-es-2").inputs["taskSpec"]["placement"]["constraints"] = ["node.labels.server==z"]
    with pytest.raises(AssertionError, match="applied by no command"):
        rules_swarm.check_services_pinned_by_applied_labels(result)


def test_vip_endpoint_is_caught() -> None:
    result = broken()
    result.named("staging-es-0").inputs["endpointSpec"]["mode"] = "vip"
    with pytest.raises(AssertionError, match="not dnsrr"):
        rules_swarm.check_overlay_dnsrr_and_updates(result)


def test_start_first_update_is_caught() -> None:
    result = broken()
    result.named("staging-es-0").inputs["updateConfig"]["order"] = "start-first"
    with pytest.raises(AssertionError, match="two copies"):
        rules_swarm.check_overlay_dnsrr_and_updates(result)


def test_password_file_outside_a_swarm_secret_is_caught() -> None:
    result = broken()
    rules_swarm.container_spec(result.named("staging-kibana")).setdefault("env", {})["ELASTICSEARCH_PASSWORD_FILE"] = (
        "/x"
    )
    with pytest.raises(AssertionError, match="ELASTICSEARCH_PASSWORD_FILE is not a swarm secret"):
        rules_swarm.check_files_and_secrets(result)


def test_memory_lock_on_swarm_is_caught() -> None:
    result = broken()
    secret_config = next(c for c in result.of_type(rules_swarm.CONFIG) if c.name == "staging-es-0-settings")
    settings = yaml.safe_load(base64.b64decode(secret_config.inputs["data"]))
    settings["bootstrap.memory_lock"] = True
    secret_config.inputs["data"] = base64.b64encode(yaml.safe_dump(settings).encode()).decode()
    with pytest.raises(AssertionError, match="memory_lock on a swarm service"):
        rules_swarm.check_memory_lock(result)


# ---- validation --------------------------------------------------------------------------------


def staging(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    config = copy.deepcopy(read_stack_config("staging"))
    edit(config)
    return config


def staging_fails(edit: Callable[[dict[str, Any]], None], fragment: str) -> None:
    error, partial = render_failure("staging", staging(edit))
    assert str(error).startswith("Pulumi.staging.yaml: "), error
    assert fragment in str(error), error
    assert partial.resources == []


def test_pinned_to_a_label_no_swarm_node_carries() -> None:
    staging_fails(
        lambda c: c[CLUSTER]["node_groups"][0].update(placement=["server=a", "server=b", "server=d"]),
        "cluster.node_groups[0].placement[2]: no swarm node carries the label server=d",
    )


def test_dedicated_masters_beside_data_nodes_publish_their_own_ports() -> None:
    """Three swarm nodes, three masters and three data nodes: each swarm node runs one of each, and each
    group publishes HTTPS from its own first port (issue: the swarm refused two ES services on a node)."""

    def groups(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"] = [
            {"name": "master", "count": 3, "roles": ["master"], "memory": "2g", "placement": PLACES},
            {"name": "data", "count": 3, "roles": ["data", "ingest"], "memory": "4g", "placement": PLACES},
        ]

    result = render("staging", staging(groups))
    published = {
        s.name: (
            s.inputs["taskSpec"]["placement"]["constraints"],
            s.inputs["endpointSpec"]["ports"][0]["publishedPort"],
        )
        for s in rules_swarm.es_services(result)
    }
    assert published["staging-master-0"] == (["node.labels.server==a"], 9200)
    assert published["staging-data-0"] == (["node.labels.server==a"], 9210)
    assert published["staging-data-2"] == (["node.labels.server==c"], 9210)
    for check in rules_swarm.SWARM_RULES.values():
        check(result)


def test_two_nodes_of_a_group_on_one_swarm_node_take_the_next_port() -> None:
    result = render(
        "staging",
        staging(lambda c: c[CLUSTER]["node_groups"][0].update(placement=["server=a", "server=b", "server=a"])),
    )
    ports = {s.name: s.inputs["endpointSpec"]["ports"][0]["publishedPort"] for s in rules_swarm.es_services(result)}
    assert ports == {"staging-es-0": 9200, "staging-es-1": 9200, "staging-es-2": 9201}


def test_a_group_port_that_meets_another_on_a_swarm_node_is_refused() -> None:
    def clash(config: dict[str, Any]) -> None:
        config[CLUSTER]["node_groups"].append(
            {"name": "data", "count": 1, "roles": ["data"], "placement": ["server=a"], "http_port": 9200}
        )

    staging_fails(clash, "host port 9200 on swarm-1 is already published")


def test_label_carried_by_two_swarm_nodes() -> None:
    staging_fails(
        lambda c: c[SWARM]["nodes"][1].update(labels={"server": "a"}),
        "cluster.node_groups[0].placement[0]: 2 swarm nodes carry server=a",
    )


def test_placement_that_is_no_selector() -> None:
    staging_fails(
        lambda c: c[CLUSTER]["node_groups"][0].update(placement=["swarm-1"]),
        "'swarm-1' is not a label selector such as server=a",
    )


def test_memory_lock_requested_on_swarm() -> None:
    staging_fails(lambda c: c[CLUSTER].update(memory_lock=True), "cluster.memory_lock: Swarm services cannot set")


def test_swarm_target_without_swarm_section() -> None:
    staging_fails(lambda c: c.pop(SWARM), "swarm: the swarm target needs the swarm section")


def test_swarm_node_without_labels() -> None:
    staging_fails(
        lambda c: c[SWARM]["nodes"][0].update(labels={}), "swarm.nodes[0].labels: a swarm node needs at least one label"
    )


def test_even_manager_count_warns_but_deploys() -> None:
    config = staging(lambda c: c[SWARM].update(managers=2))
    warnings = StackConfig.model_validate({k.split(":", 1)[1]: v for k, v in config.items()}).warnings()
    assert warnings == ["swarm.managers: 2 managers tolerate no more failures than 1; Raft wants an odd number"]
    assert rules_swarm.es_services(render("staging", config))


def test_odd_manager_count_does_not_warn() -> None:
    config = read_stack_config("staging")
    assert StackConfig.model_validate({k.split(":", 1)[1]: v for k, v in config.items()}).warnings() == []
