"""The `prod` stack on bare-metal Kubernetes: schema-valid objects, StatefulSets, MetalLB, validation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from elastic_policy.disruption import PDB
from tests import rules, rules_k8s
from tests.conftest import rendered
from tests.harness import PROJECT, Render, read_stack_config, render, render_failure, stacks_of_target
from tests.policy_pack import check_policy_pack

K8S = f"{PROJECT}:kubernetes"
CLUSTER = f"{PROJECT}:cluster"


def prod(edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    config = copy.deepcopy(read_stack_config("prod"))
    if edit:
        edit(config)
    return config


@pytest.mark.parametrize("stack", stacks_of_target("kubernetes"))
@pytest.mark.parametrize("rule", list(rules_k8s.K8S_RULES), ids=str)
def test_kubernetes_stack_satisfies_rule(stack: str, rule: str) -> None:
    rules_k8s.K8S_RULES[rule](rendered(stack))


def test_rules_hold_without_sysctl_init_and_without_metallb() -> None:
    def plain(config: dict[str, Any]) -> None:
        config[K8S].update({"sysctl_init": False, "anti_affinity": "required"})
        del config[K8S]["metallb"], config[K8S]["load_balancer"]

    result = render("prod", prod(plain))
    for rule in rules_k8s.K8S_RULES.values():
        rule(result)
    sts = result.named("prod-es")
    assert "initContainers" not in rules_k8s.pod_spec(sts) or not rules_k8s.pod_spec(sts)["initContainers"]
    assert rules_k8s.settings_of(result, sts)["node.store.allow_mmap"] is False
    assert "requiredDuringSchedulingIgnoredDuringExecution" in rules_k8s.pod_spec(sts)["affinity"]["podAntiAffinity"]
    assert {s.inputs["spec"]["type"] for s in result.of_type(rules_k8s.SERVICE) if s.inputs["spec"].get("type")} == {
        "ClusterIP"
    }


def test_pods_bootstrap_from_their_own_names_and_seed_through_the_headless_service() -> None:
    settings = rules_k8s.settings_of(rendered("prod"), rendered("prod").named("prod-es"))
    assert settings["node.name"] == "${POD_NAME}"
    assert settings["cluster.initial_master_nodes"] == ["prod-es-0", "prod-es-1", "prod-es-2"]
    assert settings["discovery.seed_hosts"] == ["prod-es-headless.elastic.svc"]


def test_certificates_name_pod_dns_services_and_the_fixed_ip() -> None:
    request = rendered("prod").named("prod-es-1-csr").inputs
    assert {"prod-es-1.prod-es-headless.elastic.svc", "prod-es-http.elastic.svc", "localhost"} <= set(
        request["dnsNames"]
    )
    assert "192.168.1.240" in request["ipAddresses"]


def test_services_ask_the_pool_for_fixed_ips() -> None:
    result = rendered("prod")
    annotations = {s.name: s.inputs["metadata"].get("annotations", {}) for s in result.of_type(rules_k8s.SERVICE)}
    assert annotations["prod-es-http"] == {
        "metallb.io/address-pool": "first-pool",
        "metallb.io/loadBalancerIPs": "192.168.1.240",
    }
    assert annotations["prod-kibana-http"]["metallb.io/loadBalancerIPs"] == "192.168.1.241"
    pool = result.named("prod-lb-first-pool")
    assert pool.inputs["metadata"] == {"name": "first-pool", "namespace": "metallb-system"}
    assert pool.inputs["spec"]["addresses"] == ["192.168.1.240-192.168.1.250"]
    assert result.outputs["elasticsearch_url"] == "https://192.168.1.240:9200"


def test_statefulset_setup_job_and_kibana_start_together() -> None:
    result = rendered("prod")
    job, kibana, statefulset = result.named("prod-setup"), result.named("prod-kibana"), result.named("prod-es")
    for resource in (job, kibana, statefulset):
        assert not [d for d in resource.dependencies if rules.resource_waits(result.by_urn()[d])]
    assert rules.wait_chain_length(result) == 1
    assert kibana.inputs["spec"]["replicas"] == 2


PINNED = {"bootstrapped": True, "initial_master_nodes": ["prod-es-0", "prod-es-1", "prod-es-2"]}


def test_scale_out_changes_only_the_replica_count() -> None:
    """A formed cluster (bootstrap pinned, README "Bootstrap once") scales out without touching a pod.
    Before the pin, the bootstrap list names every master pod, so a new count rolls them: the offline
    diff reports that restart (tests/test_review.py)."""
    before = render("prod", prod(lambda c: c[CLUSTER].update(PINNED))).named("prod-es").inputs

    def scale_out(config: dict[str, Any]) -> None:
        config[CLUSTER].update(PINNED)
        config[CLUSTER]["node_groups"][0].update(count=5)

    after = render("prod", prod(scale_out)).named("prod-es").inputs
    assert after["spec"]["replicas"] == 5
    assert after["spec"]["template"] == before["spec"]["template"], "scaling out would restart every pod"


def test_a_settings_change_rolls_the_pods() -> None:
    """Pods mount elasticsearch.yml with subPath, which never sees a ConfigMap update: the change must
    reach the pod template, or the pods would keep the old settings until some unrelated restart."""
    before = rendered("prod")
    pinned = prod(lambda c: c[CLUSTER].update(PINNED))
    after = render("prod", pinned)
    assert after.named("prod-es-config").inputs["data"] != before.named("prod-es-config").inputs["data"]
    assert after.named("prod-es").inputs["spec"]["template"] != before.named("prod-es").inputs["spec"]["template"]


def test_a_kibana_config_change_rolls_kibana_only() -> None:
    before = rendered("prod")
    after = render("prod", prod(lambda c: c.update({f"{PROJECT}:security": {"cert_validity_days": 400}})))
    assert after.named("prod-kibana-config").inputs["data"] != before.named("prod-kibana-config").inputs["data"]
    kibana_template = [r.named("prod-kibana").inputs["spec"]["template"] for r in (before, after)]
    assert kibana_template[0] != kibana_template[1]
    assert after.named("prod-es").inputs == before.named("prod-es").inputs, "the CA reaches ES pods by a live Secret"


def test_metallb_install_and_strict_arp_come_before_the_pools() -> None:
    result = render("prod", prod(lambda c: c[K8S]["metallb"].update(install=True, strict_arp=True)))
    release = result.named("prod-lb-metallb")
    assert release.inputs["chart"] == "metallb" and release.inputs["namespace"] == "metallb-system"
    patch = result.named("prod-lb-kube-proxy-strict-arp")
    assert "strictARP: true" in patch.inputs["create"]
    webhook = result.named("prod-lb-webhook-ready")
    assert release.urn in webhook.dependencies
    pool = result.named("prod-lb-first-pool")
    assert {webhook.urn, patch.urn} <= set(pool.dependencies)


# ---- the checks catch a broken stack -----------------------------------------------------------


def broken() -> Render:
    return copy.deepcopy(rendered("prod"))


def test_ordered_ready_is_caught() -> None:
    result = broken()
    result.named("prod-es").inputs["spec"]["podManagementPolicy"] = "OrderedReady"
    with pytest.raises(AssertionError, match="OrderedReady deadlocks"):
        rules_k8s.check_statefulsets(result)


def test_headless_service_hiding_unready_pods_is_caught() -> None:
    result = broken()
    result.named("prod-es-headless").inputs["spec"]["publishNotReadyAddresses"] = False
    with pytest.raises(AssertionError, match="hides forming pods"):
        rules_k8s.check_statefulsets(result)


def test_unknown_field_is_caught_by_the_kubernetes_schema() -> None:
    result = broken()
    rules_k8s.pod_spec(result.named("prod-es"))["antiAffinity"] = "soft"
    with pytest.raises(AssertionError, match="prod-es"):
        rules_k8s.check_kubernetes_schema(result)


def test_unknown_field_is_caught_by_the_metallb_schema() -> None:
    result = broken()
    result.named("prod-lb-first-pool").inputs["spec"]["autoassign"] = False
    with pytest.raises(AssertionError, match="autoassign"):
        rules_k8s.check_metallb_schema(result)


def test_advertisement_of_an_unknown_pool_is_caught() -> None:
    result = broken()
    result.named("prod-lb-l2").inputs["spec"]["ipAddressPools"] = ["second-pool"]
    with pytest.raises(AssertionError, match="ipAddressPools names second-pool, which is no pool"):
        check_policy_pack(result)


def test_fixed_ip_outside_the_pool_is_caught() -> None:
    result = broken()
    result.named("prod-es-http").inputs["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] = "192.168.1.20"
    with pytest.raises(AssertionError, match=r"fixed IP 192\.168\.1\.20 lies in no pool"):
        check_policy_pack(result)


def test_password_in_plain_env_is_caught() -> None:
    result = broken()
    rules_k8s.es_container(result.named("prod-es"))["env"].append({"name": "ELASTIC_PASSWORD2", "value": "x"})
    with pytest.raises(AssertionError, match="env ELASTIC_PASSWORD2 holds a literal value"):
        check_policy_pack(result)


def test_missing_pdb_is_caught() -> None:
    result = broken()
    result.resources = [r for r in result.resources if r.type != PDB]
    with pytest.raises(AssertionError, match="no PodDisruptionBudget in its namespace selects its pods"):
        check_policy_pack(result)


# ---- validation --------------------------------------------------------------------------------


def prod_fails(edit: Callable[[dict[str, Any]], None], *fragments: str) -> None:
    error, partial = render_failure("prod", prod(edit))
    assert str(error).startswith("Pulumi.prod.yaml: "), error
    for fragment in fragments:
        assert fragment in str(error), error
    assert partial.resources == []


def pool_addresses(*addresses: str) -> Callable[[dict[str, Any]], None]:
    return lambda c: c[K8S]["metallb"]["pools"][0].update(addresses=list(addresses))


def test_bad_cidr() -> None:
    prod_fails(pool_addresses("192.168.1.0/33"), "kubernetes.metallb.pools[0].addresses[0]:", "is not a CIDR")


def test_cidr_with_host_bits() -> None:
    prod_fails(pool_addresses("192.168.1.5/24"), "kubernetes.metallb.pools[0].addresses[0]:", "host bits set")


def test_bare_ip_without_prefix() -> None:
    prod_fails(pool_addresses("192.168.1.240"), "'192.168.1.240' is a bare address; write a CIDR")


def test_reversed_range() -> None:
    prod_fails(pool_addresses("192.168.1.250-192.168.1.240"), "is reversed")


def test_mixed_address_family() -> None:
    prod_fails(pool_addresses("192.168.1.240-fd00::10"), "mixes IPv4 and IPv6")


def test_overlap_within_a_pool() -> None:
    prod_fails(
        pool_addresses("192.168.1.240-192.168.1.250", "192.168.1.248/29"),
        "kubernetes.metallb.pools[0].addresses[1]: 192.168.1.248/29 overlaps 192.168.1.240-192.168.1.250",
    )


def test_overlap_across_pools() -> None:
    prod_fails(
        lambda c: c[K8S]["metallb"]["pools"].append({"name": "second", "addresses": ["192.168.1.250/32"]}),
        "kubernetes.metallb.pools[1].addresses: 192.168.1.250/32 overlaps "
        "192.168.1.240-192.168.1.250 of pool first-pool",
    )


def test_empty_pool() -> None:
    prod_fails(pool_addresses(), "kubernetes.metallb.pools[0].addresses: the pool has no address")


def test_fixed_ip_outside_the_pool() -> None:
    prod_fails(
        lambda c: c[K8S]["load_balancer"].update(elasticsearch_ip="192.168.1.100"),
        "kubernetes.load_balancer.elasticsearch_ip: 192.168.1.100 is outside pool first-pool",
    )


def test_service_asking_for_an_unknown_pool() -> None:
    prod_fails(lambda c: c[K8S]["load_balancer"].update(pool="other"), "kubernetes.load_balancer.pool: 'other' is not")


def test_namespace_not_a_dns_label() -> None:
    prod_fails(lambda c: c[K8S].update(namespace="Elastic_NS"), "kubernetes.namespace: 'Elastic_NS' is not a DNS label")


def test_pool_name_not_a_dns_label() -> None:
    prod_fails(
        lambda c: c[K8S]["metallb"]["pools"][0].update(name="First Pool"),
        "kubernetes.metallb.pools[0].name: 'First Pool' is not a DNS label",
    )


def test_bad_storage_size() -> None:
    prod_fails(lambda c: c[CLUSTER]["node_groups"][0].update(storage="50 gigs"), "cluster.node_groups[0].storage:")


def test_negative_replicas() -> None:
    prod_fails(lambda c: c[f"{PROJECT}:kibana"].update(replicas=-1), "kibana.replicas: Input should be greater")
    prod_fails(lambda c: c[CLUSTER]["node_groups"][0].update(count=-3), "cluster.node_groups[0].count:")


def test_unknown_field_in_kubernetes_section() -> None:
    prod_fails(lambda c: c[K8S]["metallb"]["pools"][0].update(autoassign=True), "pools[0].autoassign: unknown key")


def test_load_balancer_without_metallb() -> None:
    prod_fails(lambda c: c[K8S].pop("metallb"), "kubernetes.load_balancer: LoadBalancer Services need")
