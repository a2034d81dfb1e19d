"""MetalLB (docs/rules.md "MetalLB"): what MetalLB refuses in one object is a resource policy, judged
before the object is created; references between pools, advertisements and Services are a stack policy,
judged once all resources are known (once, at the end of a preview or an update)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, ResourceValidationArgs, StackValidationArgs

from elastic_policy.reading import UNKNOWN, Unknown, elements, get_path, keys, read

POOL = "kubernetes:metallb.io/v1beta1:IPAddressPool"
ADVERTISEMENTS = ("kubernetes:metallb.io/v1beta1:L2Advertisement", "kubernetes:metallb.io/v1beta1:BGPAdvertisement")
SERVICE = "kubernetes:core/v1:Service"
POOL_ANNOTATIONS = ("metallb.io/address-pool", "metallb.universe.tf/address-pool")
IP_ANNOTATIONS = ("metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_networks(entry: str) -> list[Network]:
    """One entry of a pool's addresses as MetalLB reads it (metallb/metallb internal/config `ParseCIDR`): a
    CIDR, or a range `start-end` of one family with start <= end. ValueError when it is neither."""
    if "-" not in entry:
        return [ipaddress.ip_network(entry.strip(), strict=False)]
    start, end = (ipaddress.ip_address(part.strip()) for part in entry.split("-", 1))
    try:
        return list(ipaddress.summarize_address_range(start, end))  # ValueError when end < start
    except TypeError:
        raise ValueError(f"{entry} mixes address families") from None


def _fixed_ips(service: Mapping[str, Any]) -> list[str]:
    """The known addresses a Service asks MetalLB for: the annotations, and the older spec.loadBalancerIP."""
    annotations = get_path(service, "metadata", "annotations")
    listed = [read(annotations, a) for a in IP_ANNOTATIONS if a in keys(annotations)]
    texts = [ip.strip() for value in listed if isinstance(value, str) for ip in value.split(",") if ip.strip()]
    single = get_path(service, "spec", "loadBalancerIP")
    return texts + ([single] if isinstance(single, str) and single else [])


def _is_load_balancer(props: Mapping[str, Any]) -> bool:
    return bool(get_path(props, "spec", "type") == "LoadBalancer")


def check_object(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == POOL:
        if get_path(props, "metadata", "name") in (None, ""):
            report("the pool has no metadata.name, so advertisements and Services cannot name it", None)
        addresses = get_path(props, "spec", "addresses")
        if addresses is not UNKNOWN and not elements(addresses):
            report("the pool has no addresses (MetalLB refuses it)", None)
        seen: list[Network] = []
        for entry in (e for e in elements(addresses) if isinstance(e, str)):
            try:
                networks = address_networks(entry)
            except ValueError:
                report(f"address {entry} is neither a CIDR nor a start-end range of one family", None)
                continue
            if any(n.overlaps(s) for n in networks for s in seen):
                report(f"address {entry} overlaps another address of the pool (MetalLB refuses it)", None)
            seen += networks
    elif args.resource_type in ADVERTISEMENTS:
        names = [n for n in elements(get_path(props, "spec", "ipAddressPools")) if isinstance(n, str)]
        for name in sorted({n for n in names if names.count(n) > 1}):
            report(f"ipAddressPools names {name} twice (MetalLB refuses the advertisement)", None)
    elif args.resource_type == SERVICE and _is_load_balancer(props):
        for ip in _fixed_ips(props):
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                report(f"{ip} is not an IP address", None)


def _namespace(props: Mapping[str, Any]) -> str | Unknown:
    namespace = get_path(props, "metadata", "namespace")
    return namespace if namespace is UNKNOWN else str(namespace or "default")


def _networks(pool: PolicyResource) -> list[Network] | Unknown:
    """The pool's addresses; entries MetalLB refuses are the resource policy's to report."""
    entries = elements(get_path(pool.props, "spec", "addresses"))
    if get_path(pool.props, "spec", "addresses") is UNKNOWN or UNKNOWN in entries:
        return UNKNOWN
    networks: list[Network] = []
    for entry in entries:
        try:
            networks += address_networks(str(entry))
        except ValueError:
            continue
    return networks


def check_references(args: StackValidationArgs, report: ReportViolation) -> None:
    """Each check runs only when every value it needs is known: a pool whose name a preview does not know
    might be the one an advertisement names."""
    pools: dict[tuple[str, str], PolicyResource] = {}
    pools_known = True
    for pool in (r for r in args.resources if r.resource_type == POOL):
        namespace, name = _namespace(pool.props), get_path(pool.props, "metadata", "name")
        if isinstance(namespace, Unknown) or name is UNKNOWN:
            pools_known = False
        else:
            pools[(namespace, str(name))] = pool
    announced: set[tuple[str, str]] = set()
    announcements_known = True
    for advertisement in (r for r in args.resources if r.resource_type in ADVERTISEMENTS):
        namespace = _namespace(advertisement.props)
        names = get_path(advertisement.props, "spec", "ipAddressPools")
        selectors = get_path(advertisement.props, "spec", "ipAddressPoolSelectors")
        if isinstance(namespace, Unknown) or UNKNOWN in (names, selectors) or elements(selectors):
            announcements_known = False  # label selectors are not evaluated here
            continue
        if not elements(names):
            announced |= {key for key in pools if key[0] == namespace}  # no list: every pool of the namespace
        for name in elements(names):
            if name is UNKNOWN:
                announcements_known = False
            elif (namespace, str(name)) not in pools and pools_known:
                report(
                    f"{advertisement.name}: ipAddressPools names {name}, which is no pool in {namespace}",
                    advertisement.urn,
                )
            announced.add((namespace, str(name)))
    for key, pool in pools.items():
        if key not in announced and announcements_known:
            report(f"pool {key[1]} is announced by no advertisement: its addresses never reach the network", pool.urn)
    for service in args.resources:
        if service.resource_type == SERVICE and _is_load_balancer(service.props):
            _check_service(service, pools, pools_known, report)


def _check_service(
    service: PolicyResource, pools: Mapping[tuple[str, str], PolicyResource], pools_known: bool, report: ReportViolation
) -> None:
    annotations = get_path(service.props, "metadata", "annotations")
    asked = [read(annotations, a) for a in POOL_ANNOTATIONS if a in keys(annotations)]
    pool_name = asked[0] if asked else None
    if pool_name is UNKNOWN:
        return
    candidates = [pool for (_, name), pool in pools.items() if pool_name in (None, name)]
    if pool_name is not None and not candidates:
        if pools_known:
            report(f"Service {service.name} asks for pool {pool_name}, which does not exist", service.urn)
        return
    found = [_networks(pool) for pool in candidates]
    networks = [network for each in found if not isinstance(each, Unknown) for network in each]
    if not pools_known or UNKNOWN in found:
        return
    for ip in _fixed_ips(service.props):
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            continue  # the resource policy reports it
        if not any(address in network for network in networks):
            report(f"Service {service.name}: fixed IP {ip} lies in no pool it may use", service.urn)
