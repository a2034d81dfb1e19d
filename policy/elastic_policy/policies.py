"""The policies: TLS on, no plain-text passwords, heap at most half the memory limit (RULES.md
"Security" and "Memory and OS"), a PodDisruptionBudget for every Elasticsearch StatefulSet
("Kubernetes") and MetalLB references that resolve ("MetalLB")."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from elastic_policy.workloads import (
    HEAP_OPTIONS,
    STATEFULSET,
    containers,
    elasticsearch_settings,
    get_path,
    heap_sizes,
    kibana_settings,
)

MAX_HEAP = 31 * 2**30  # compressed object pointers stop a little below 32 GiB
SECRET_NAME = re.compile(r"password|passwd|secret|token|encryption_?key|api_?key", re.IGNORECASE)
TLS_LAYERS = ("http", "transport")


def check_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for settings in elasticsearch_settings(args.resource_type, args.props):
        if settings.get("xpack.security.enabled") is not True:
            report("Elasticsearch settings must set xpack.security.enabled: true", None)
        for layer in TLS_LAYERS:
            prefix = f"xpack.security.{layer}.ssl"
            if settings.get(f"{prefix}.enabled") is not True:
                report(f"Elasticsearch settings must set {prefix}.enabled: true", None)
            elif not (settings.get(f"{prefix}.certificate") and settings.get(f"{prefix}.key")) and not settings.get(
                f"{prefix}.keystore.path"
            ):
                report(f"{prefix} has no certificate and key (or keystore)", None)
        if settings.get("xpack.security.transport.ssl.verification_mode") == "none":
            report("transport TLS must verify certificates (verification_mode is none)", None)
    for settings in kibana_settings(args.resource_type, args.props):
        hosts = settings.get("elasticsearch.hosts")
        for host in hosts if isinstance(hosts, list) else [hosts]:
            if not str(host).startswith("https://"):
                report(f"Kibana must reach Elasticsearch over https, not {host}", None)
        if not settings.get("elasticsearch.ssl.certificateAuthorities"):
            report("Kibana must trust the cluster CA (elasticsearch.ssl.certificateAuthorities)", None)
        if settings.get("elasticsearch.ssl.verificationMode") == "none":
            report("Kibana must verify the Elasticsearch certificate (verificationMode is none)", None)


def check_no_plaintext_passwords(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in containers(args.resource_type, args.props):
        for name, value in container.env.items():
            if value is not None and SECRET_NAME.search(name) and not name.endswith("_FILE"):
                report(
                    f"container {container.name}: env {name} holds a literal value; use {name}_FILE with a "
                    "secret file, or a secretKeyRef",
                    None,
                )
    for settings in [
        *elasticsearch_settings(args.resource_type, args.props),
        *kibana_settings(args.resource_type, args.props),
    ]:
        for key, value in settings.items():
            if SECRET_NAME.search(key.rsplit(".", 1)[-1]) and value not in (None, ""):
                report(f"settings file holds {key} in plain text; use the keystore", None)


def check_heap(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in containers(args.resource_type, args.props):
        if not container.runs_elasticsearch:
            continue
        if container.memory_limit is None:
            report(f"Elasticsearch container {container.name} has no memory limit", None)
            continue
        heap = heap_sizes(container.env.get(HEAP_OPTIONS) or "")
        if not heap:
            continue  # Elasticsearch sizes its heap from the limit itself
        if heap.get("s") != heap.get("x"):
            report(f"Elasticsearch container {container.name}: -Xms and -Xmx differ ({HEAP_OPTIONS})", None)
        largest = max(heap.values())
        if largest * 2 > container.memory_limit:
            report(
                f"Elasticsearch container {container.name}: heap {largest // 2**20} MiB is more than half of the "
                f"memory limit {container.memory_limit // 2**20} MiB",
                None,
            )
        if largest > MAX_HEAP:
            report(f"Elasticsearch container {container.name}: heap above 31 GiB", None)


def _namespace(resource: PolicyResource) -> str:
    return str(get_path(resource.props, "metadata", "namespace") or "default")


def check_pdb(args: StackValidationArgs, report: ReportViolation) -> None:
    budgets = [r for r in args.resources if r.resource_type == "kubernetes:policy/v1:PodDisruptionBudget"]
    for statefulset in args.resources:
        if statefulset.resource_type != STATEFULSET:
            continue
        if not any(c.runs_elasticsearch for c in containers(STATEFULSET, statefulset.props)):
            continue
        pod_labels = get_path(statefulset.props, "spec", "template", "metadata", "labels") or {}
        covered = False
        for budget in budgets:
            selector = get_path(budget.props, "spec", "selector") or {}
            match = selector.get("matchLabels") or {}
            if (
                _namespace(budget) == _namespace(statefulset)
                and match
                and not selector.get("matchExpressions")
                and all(pod_labels.get(k) == v for k, v in match.items())
            ):
                covered = True
        if not covered:
            report(
                f"StatefulSet {statefulset.name}: no PodDisruptionBudget in its namespace selects its pods",
                statefulset.urn,
            )


METALLB_POOL = "kubernetes:metallb.io/v1beta1:IPAddressPool"
METALLB_L2 = "kubernetes:metallb.io/v1beta1:L2Advertisement"
METALLB_BGP = "kubernetes:metallb.io/v1beta1:BGPAdvertisement"
POOL_ANNOTATIONS = ("metallb.io/address-pool", "metallb.universe.tf/address-pool")
IP_ANNOTATIONS = ("metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _pool_networks(pool: PolicyResource) -> list[Network]:
    networks: list[Network] = []
    for entry in get_path(pool.props, "spec", "addresses") or []:
        text = str(entry)
        try:
            if "-" in text:
                start, end = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
                networks += ipaddress.summarize_address_range(start, end)
            else:
                networks.append(ipaddress.ip_network(text, strict=False))
        except (ValueError, TypeError):
            continue  # MetalLB's webhook rejects it; this policy judges references
    return networks


def check_metallb(args: StackValidationArgs, report: ReportViolation) -> None:
    pools = {
        (_namespace(r), str(get_path(r.props, "metadata", "name"))): r
        for r in args.resources
        if r.resource_type == METALLB_POOL
    }
    announced: set[tuple[str, str]] = set()
    for advertisement in (r for r in args.resources if r.resource_type in (METALLB_L2, METALLB_BGP)):
        namespace = _namespace(advertisement)
        names = get_path(advertisement.props, "spec", "ipAddressPools") or []
        if not names and not get_path(advertisement.props, "spec", "ipAddressPoolSelectors"):
            announced |= {key for key in pools if key[0] == namespace}  # no list: every pool of the namespace
        for name in names:
            if (namespace, str(name)) not in pools:
                report(
                    f"{advertisement.name}: ipAddressPools names {name}, which is no pool in {namespace}",
                    advertisement.urn,
                )
            announced.add((namespace, str(name)))
    for key, pool in pools.items():
        if key not in announced:
            report(f"pool {key[1]} is announced by no advertisement: its addresses never reach the network", pool.urn)
    for service in args.resources:
        if (
            service.resource_type != "kubernetes:core/v1:Service"
            or get_path(service.props, "spec", "type") != "LoadBalancer"
        ):
            continue
        _check_service(service, pools, report)


def _check_service(
    service: PolicyResource, pools: Mapping[tuple[str, str], PolicyResource], report: ReportViolation
) -> None:
    annotations = get_path(service.props, "metadata", "annotations") or {}
    pool_name = next((annotations[a] for a in POOL_ANNOTATIONS if a in annotations), None)
    candidates = [pool for (_, name), pool in pools.items() if pool_name in (None, name)]
    if pool_name is not None and not candidates:
        report(f"Service {service.name} asks for pool {pool_name}, which does not exist", service.urn)
        return
    fixed = [ip.strip() for a in IP_ANNOTATIONS if a in annotations for ip in str(annotations[a]).split(",")]
    if get_path(service.props, "spec", "loadBalancerIP"):
        fixed.append(str(get_path(service.props, "spec", "loadBalancerIP")))
    networks = [network for pool in candidates for network in _pool_networks(pool)]
    for ip in fixed:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            report(f"Service {service.name}: {ip} is not an IP address", service.urn)
            continue
        if not any(address in network for network in networks):
            report(f"Service {service.name}: fixed IP {ip} lies in no pool it may use", service.urn)


POLICIES = (
    ResourceValidationPolicy(
        name="elasticsearch-tls",
        description="TLS on both Elasticsearch layers with certificate and key; Kibana on https trusting the CA.",
        validate=check_tls,
    ),
    ResourceValidationPolicy(
        name="no-plaintext-passwords",
        description="No password, token or key as a literal env value or in a settings file.",
        validate=check_no_plaintext_passwords,
    ),
    ResourceValidationPolicy(
        name="elasticsearch-heap",
        description="Every Elasticsearch container has a memory limit; Xms = Xmx, at most half of it, under 31 GiB.",
        validate=check_heap,
    ),
    StackValidationPolicy(
        name="elasticsearch-pdb",
        description="Every Elasticsearch StatefulSet has a PodDisruptionBudget selecting its pods.",
        validate=check_pdb,
    ),
    StackValidationPolicy(
        name="metallb-references",
        description="Advertisements and LoadBalancer Services name existing pools; fixed IPs lie in them.",
        validate=check_metallb,
    ),
)
