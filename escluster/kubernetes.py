"""Kubernetes and MetalLB config (target `kubernetes`), validated the way MetalLB's webhook does.

Pure Python. MetalLB rules (metallb/metallb internal/config/config.go): addresses are CIDRs or
`start-end` ranges of one family with start <= end; no address in two places; every pool announced.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from escluster.fields import DnsLabel, DnsSubdomain, IPAddress, Strict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_METALLB_CHART = "0.15.2"


@dataclass(frozen=True)
class AddressRange:
    text: str
    first: IP
    last: IP

    def __contains__(self, ip: IP) -> bool:
        return ip.version == self.first.version and self.first <= ip <= self.last  # type: ignore[operator]

    def overlaps(self, other: AddressRange) -> bool:
        return self.first.version == other.first.version and not (
            self.last < other.first or other.last < self.first  # type: ignore[operator]
        )


def parse_addresses(text: str) -> AddressRange:
    """A MetalLB pool entry: a CIDR (`192.168.1.0/24`) or a range (`192.168.1.240-192.168.1.250`)."""
    if "-" in text:
        start_text, _, end_text = (part.strip() for part in text.partition("-"))
        try:
            start, end = ipaddress.ip_address(start_text), ipaddress.ip_address(end_text)
        except ValueError:
            raise ValueError(f"{text!r} is not a range of two IP addresses") from None
        if start.version != end.version:
            raise ValueError(f"{text!r} mixes IPv4 and IPv6")
        if start > end:  # type: ignore[operator]
            raise ValueError(f"{text!r} is reversed: its start is after its end")
        return AddressRange(text, start, end)
    if "/" not in text:
        raise ValueError(f"{text!r} is a bare address; write a CIDR such as {text}/32 or a range")
    try:
        network: IPNetwork = ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        raise ValueError(f"{text!r} is not a CIDR ({error})") from None
    return AddressRange(text, network.network_address, network.broadcast_address)


class Pool(Strict):
    name: DnsLabel = Field(description="IPAddressPool name.")
    addresses: list[str] = Field(description="CIDRs or `start-end` ranges.")
    auto_assign: bool = Field(True, description="Whether Services without a pool annotation may get its addresses.")

    @model_validator(mode="after")
    def _check(self) -> Pool:
        if not self.addresses:
            raise ValueError("addresses: the pool has no address")
        ranges = []
        for index, text in enumerate(self.addresses):
            try:
                ranges.append(parse_addresses(text))
            except ValueError as error:
                raise ValueError(f"addresses[{index}]: {error}") from None
        for index, current in enumerate(ranges):
            for earlier in ranges[:index]:
                if current.overlaps(earlier):
                    raise ValueError(f"addresses[{index}]: {current.text} overlaps {earlier.text}")
        return self

    @property
    def ranges(self) -> list[AddressRange]:
        return [parse_addresses(text) for text in self.addresses]


class MetalLB(Strict):
    namespace: DnsLabel = Field("metallb-system", description="MetalLB's namespace.")
    pools: list[Pool] = Field(min_length=1, description="IPAddressPools, each announced by an L2Advertisement.")
    install: bool = Field(False, description="Install MetalLB from its Helm chart before the pools.")
    chart_version: str = Field(DEFAULT_METALLB_CHART, description="MetalLB Helm chart version when installing.")
    strict_arp: bool = Field(False, description="Patch kube-proxy (IPVS mode) for strictARP, as MetalLB L2 needs.")

    @model_validator(mode="after")
    def _check(self) -> MetalLB:
        seen: dict[str, tuple[str, AddressRange]] = {}
        names = [pool.name for pool in self.pools]
        for index, pool in enumerate(self.pools):
            if pool.name in names[:index]:
                raise ValueError(f"pools[{index}].name: {pool.name!r} is used by another pool")
            for current in pool.ranges:
                for other_pool, other in seen.values():
                    if current.overlaps(other):
                        raise ValueError(
                            f"pools[{index}].addresses: {current.text} overlaps {other.text} of pool {other_pool}"
                        )
                seen[f"{pool.name}/{current.text}"] = (pool.name, current)
        return self

    def pool(self, name: str) -> Pool | None:
        return next((pool for pool in self.pools if pool.name == name), None)


class LoadBalancer(Strict):
    pool: DnsLabel = Field(description="MetalLB pool the LoadBalancer Services ask for.")
    elasticsearch_ip: IPAddress | None = Field(None, description="Fixed IP of the ES HTTPS Service, inside the pool.")
    kibana_ip: IPAddress | None = Field(None, description="Fixed IP of the Kibana Service, inside the pool.")


class Kubernetes(Strict):
    namespace: DnsLabel = Field("elastic", description="Namespace of the cluster's objects.")
    context: str | None = Field(None, description="kubeconfig context; default the current one.")
    storage_class: DnsSubdomain | None = Field(None, description="StorageClass of the data volume claims.")
    anti_affinity: Literal["preferred", "required"] = Field(
        "preferred", description="Pod anti-affinity across Kubernetes nodes."
    )
    sysctl_init: bool = Field(
        True, description="Privileged init container for vm.max_map_count; off: `node.store.allow_mmap: false`."
    )
    load_balancer: LoadBalancer | None = Field(None, description="LoadBalancer Services for ES HTTPS and Kibana.")
    metallb: MetalLB | None = Field(None, description="MetalLB pools (and optionally MetalLB itself).")

    @model_validator(mode="after")
    def _check(self) -> Kubernetes:
        if self.load_balancer is None:
            return self
        if self.metallb is None:
            raise ValueError("load_balancer: LoadBalancer Services need kubernetes.metallb pools on bare metal")
        pool = self.metallb.pool(self.load_balancer.pool)
        if pool is None:
            raise ValueError(
                f"load_balancer.pool: {self.load_balancer.pool!r} is not a MetalLB pool "
                f"({[p.name for p in self.metallb.pools]})"
            )
        fixed = [("elasticsearch_ip", self.load_balancer.elasticsearch_ip), ("kibana_ip", self.load_balancer.kibana_ip)]
        for key, text in fixed:
            if text is not None and not any(ipaddress.ip_address(text) in r for r in pool.ranges):
                raise ValueError(f"load_balancer.{key}: {text} is outside pool {pool.name} ({pool.addresses})")
        if fixed[0][1] is not None and fixed[0][1] == fixed[1][1]:
            raise ValueError("load_balancer.kibana_ip: Kibana and Elasticsearch cannot share one IP")
        return self


@dataclass(frozen=True)
class ClusterAccess:
    """The cluster the stack's Kubernetes provider talks to, for the program's `kubectl` steps (roll, drain,
    CA checks, MetalLB's strictARP and webhook wait): `kubernetes.context`, else the provider's own config
    (`kubernetes:context`, `kubernetes:kubeconfig`, as the default provider reads them), else kubectl's
    defaults (KUBECONFIG, the current context), which the provider follows too."""

    context: str | None = None
    kubeconfig: str | None = None

    def kubectl_argv(self, *arguments: str) -> list[str]:
        """`kubectl` and its arguments on this cluster."""
        target = [*(["--kubeconfig", self.kubeconfig] if self.kubeconfig else [])]
        target += ["--context", self.context] if self.context else []
        return ["kubectl", *target, *arguments]

    def kubectl(self, *arguments: str) -> str:
        """A `kubectl` command line (shell-quoted) on this cluster."""
        return shlex.join(self.kubectl_argv(*arguments))


def cluster_access(
    settings: Kubernetes, provider_context: str | None, provider_kubeconfig: str | None
) -> ClusterAccess:
    """`provider_*`: the stack's `kubernetes:context` and `kubernetes:kubeconfig`. The provider takes a
    kubeconfig's contents there too; kubectl needs a file."""
    if provider_kubeconfig is not None and "\n" in provider_kubeconfig.strip():
        raise ValueError(
            "kubernetes:kubeconfig holds a kubeconfig's contents; the program's kubectl steps need a file: set "
            "the key to its path (or leave it unset and use KUBECONFIG)"
        )
    # The provider expands a leading ~ itself (pulumi-kubernetes provider/pkg/provider/util.go).
    kubeconfig = os.path.expanduser(provider_kubeconfig) if provider_kubeconfig else None
    return ClusterAccess(settings.context or provider_context, kubeconfig)
