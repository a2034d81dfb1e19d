"""The cluster plan: every node's Elasticsearch settings, derived from a validated stack config.

Pure Python (no Pulumi): this is where the discovery, bootstrap, heap and TLS rules live.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import yaml

from escluster.changes import Lifecycle, decide
from escluster.config import StackConfig
from escluster.hosts import DockerHost, NodeSlot
from escluster.units import jvm_size

ES_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch"
KIBANA_IMAGE = "docker.elastic.co/kibana/kibana"
ES_HOME = "/usr/share/elasticsearch"
ES_CONFIG_DIR = f"{ES_HOME}/config"
ES_DATA_DIR = f"{ES_HOME}/data"
KIBANA_HOME = "/usr/share/kibana"
KIBANA_CONFIG_DIR = f"{KIBANA_HOME}/config"
# Secret files go here, never into env (Kibana fills its keystore from them).
SECRETS_DIR = "/run/secrets"
HTTP_PORT = 9200
INITIAL_MASTER_NODES = "cluster.initial_master_nodes"
TRANSPORT_PORT = 9300
KIBANA_PORT = 5601
KIBANA_USER = "kibana_system"
LOOPBACK_IPS = ("127.0.0.1", "::1")

SettingValue = str | int | bool | list[str]
# libyaml's emitter where PyYAML was built with it: the same output, many times faster.
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class TlsFiles:
    """Where a container finds its CA, certificate and key, laid out as `elasticsearch-certutil` does."""

    ca: str
    certificate: str
    key: str

    @staticmethod
    def under(config_dir: str, name: str) -> TlsFiles:
        return TlsFiles(
            ca=f"{config_dir}/certs/ca/ca.crt",
            certificate=f"{config_dir}/certs/{name}/{name}.crt",
            key=f"{config_dir}/certs/{name}/{name}.key",
        )


@dataclass(frozen=True)
class HostPlan:
    """A Docker engine of a cluster across servers."""

    name: str
    engine: str
    address: str
    cert_path: str | None
    ssh_opts: tuple[str, ...]

    @property
    def bind_ip(self) -> str:
        """Published ports listen on the host's address, or on every address when it is a DNS name."""
        return self.address if _is_ip(self.address) else "0.0.0.0"


@dataclass(frozen=True)
class NodePlan:
    name: str
    roles: tuple[str, ...]
    memory_bytes: int
    heap_bytes: int
    tls: TlsFiles
    # Names and addresses clients use to reach the node: they go into its certificate.
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    settings: Mapping[str, SettingValue]
    host: HostPlan | None
    # Host ports; the container's transport port equals its published one (seed 000: `transport.port`).
    http_host_port: int | None
    transport_host_port: int | None
    bind_ip: str
    url: str
    # Swarm: the swarm node the service is pinned to, and its placement constraints.
    swarm_node: str | None = None
    placement_constraints: tuple[str, ...] = ()

    @property
    def workload_spec(self) -> str:
        """Everything the node's container or service is made from (its host by name and address, not
        how its engine is reached): a change restarts the node, so it goes through the node's gate."""
        host = f"{self.host.name}@{self.host.address}" if self.host else ""
        return repr(replace(self, host=None)) + host

    @property
    def jvm_options(self) -> str:
        size = jvm_size(self.heap_bytes)
        return f"-Xms{size} -Xmx{size}"

    @property
    def public_address(self) -> str:
        """Where clients outside Docker reach the node's published ports."""
        if self.host:
            return self.host.address
        return self.swarm_node or self.bind_ip


@dataclass(frozen=True)
class KibanaPlan:
    names: tuple[str, ...]
    version: str
    memory_bytes: int
    host: HostPlan | None
    host_ports: tuple[int, ...]
    bind_ip: str
    ca_file: str
    settings: Mapping[str, SettingValue]

    @property
    def public_address(self) -> str:
        return self.host.address if self.host else self.bind_ip


@dataclass(frozen=True)
class ClusterPlan:
    cluster_name: str
    version: str
    nodes: tuple[NodePlan, ...]
    kibana: KibanaPlan
    hosts: tuple[HostPlan, ...]
    memory_lock: bool
    cert_validity_hours: int
    lifecycle: Lifecycle
    seed_hosts: tuple[str, ...]

    @property
    def network_name(self) -> str:
        """The cluster's Docker network: a bridge on each engine, or the swarm's attachable overlay."""
        return f"{self.cluster_name}-overlay" if any(n.swarm_node for n in self.nodes) else f"{self.cluster_name}-net"

    @property
    def http_exposed_node(self) -> NodePlan | None:
        return next((node for node in self.nodes if node.http_host_port is not None), None)

    @property
    def es_urls(self) -> tuple[str, ...]:
        return tuple(node.url for node in self.nodes)

    @property
    def bootstrap_nodes(self) -> tuple[str, ...]:
        """The nodes whose settings name `cluster.initial_master_nodes` (a new cluster's masters)."""
        return tuple(node.name for node in self.nodes if INITIAL_MASTER_NODES in node.settings)

    @property
    def running_urls(self) -> tuple[str, ...]:
        """The URLs of the nodes kept from the last state: the ones running when this run starts."""
        return tuple(node.url for node in self.nodes if node.name in self.lifecycle.recorded_nodes)

    @property
    def master_urls(self) -> tuple[str, ...]:
        """The master-eligible nodes' URLs: the ones the roll's tasks ask, which adding or removing other
        nodes leaves as they are (a task whose inputs stay the same does not run again)."""
        return tuple(node.url for node in self.nodes if "master" in node.roles)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _host_plan(host: DockerHost) -> HostPlan:
    return HostPlan(host.name, host.engine, host.address, host.cert_path, tuple(host.ssh_opts))


def build_plan(config: StackConfig, lifecycle: Lifecycle | None = None) -> ClusterPlan:
    """Every node's settings for this run: `lifecycle` says whether the cluster has formed (default: new)."""
    cluster = config.cluster
    lifecycle = lifecycle or decide(config, None)
    hosts = {host.name: _host_plan(host) for host in config.docker_hosts}
    slots = config.node_slots()
    groups = cluster.node_groups
    single_node = cluster.is_single_node
    by_name = {slot.name: slot for slot in slots}
    swarm = config.swarm_placements()
    seed_hosts = () if single_node else _seed_hosts(lifecycle, config, by_name, hosts)
    # Only a cluster forming for the first time bootstraps; no node of a formed one names initial masters.
    initial_masters = () if single_node or lifecycle.formed else tuple(cluster.bootstrap_masters)

    nodes = []
    for slot in slots:
        group = groups[slot.group_index]
        host = hosts[slot.host] if slot.host else None
        bind_ip = host.bind_ip if host else config.exposure.bind_address
        tls = TlsFiles.under(ES_CONFIG_DIR, slot.name)
        settings: dict[str, SettingValue] = {
            "cluster.name": cluster.name,
            "node.name": slot.name,
            "node.roles": [str(role) for role in group.roles],
            "network.host": "0.0.0.0",
            "bootstrap.memory_lock": config.memory_lock,
            "path.data": ES_DATA_DIR,
            **security_settings(tls),
        }
        if host is not None and slot.transport_port is not None:
            # Other hosts reach this node at its host's address and published port.
            settings["network.publish_host"] = host.address
            settings["transport.port"] = slot.transport_port
        if slot.name in swarm:
            # A swarm task has several interfaces (overlay, ingress, gwbridge); its service name
            # resolves to its overlay address only (elastic/elasticsearch-docker#91).
            settings["network.publish_host"] = slot.name
        if single_node:
            settings["discovery.type"] = "single-node"
        else:
            settings["discovery.seed_hosts"] = list(seed_hosts)
            if group.master_eligible and initial_masters:
                settings[INITIAL_MASTER_NODES] = list(initial_masters)
        pinned = swarm.get(slot.name)
        if host is not None:
            published = [host.address]
        elif slot.http_port is None:
            published = []
        else:
            # On a swarm the HTTPS port is published on the pinned node itself.
            published = [pinned.node] if pinned else [bind_ip]
        nodes.append(
            NodePlan(
                name=slot.name,
                roles=tuple(str(role) for role in group.roles),
                memory_bytes=group.memory,
                heap_bytes=group.heap_bytes,
                tls=tls,
                dns_names=(slot.name, "localhost", *(a for a in published if not _is_ip(a))),
                ip_addresses=_ips(published),
                settings=settings,
                host=host,
                http_host_port=slot.http_port,
                transport_host_port=slot.transport_port,
                bind_ip=bind_ip,
                url=f"https://{host.address}:{slot.http_port}" if host else f"https://{slot.name}:{HTTP_PORT}",
                swarm_node=pinned.node if pinned else None,
                placement_constraints=pinned.constraints if pinned else (),
            )
        )

    kibana_host = hosts[config.kibana_host.name] if config.kibana_host else None
    return ClusterPlan(
        cluster_name=cluster.name,
        version=cluster.version,
        nodes=tuple(nodes),
        kibana=_kibana_plan(config, kibana_host, tuple(node.url for node in nodes)),
        hosts=tuple(hosts.values()),
        memory_lock=config.memory_lock,
        cert_validity_hours=config.security.cert_validity_days * 24,
        lifecycle=lifecycle,
        seed_hosts=seed_hosts,
    )


def _seed_hosts(
    lifecycle: Lifecycle, config: StackConfig, by_name: Mapping[str, NodeSlot], hosts: Mapping[str, HostPlan]
) -> tuple[str, ...]:
    """Discovery is seeded by the nodes that bootstrapped the cluster, and keeps those seeds while one of
    them is still a master: a new seed list would restart every node, and adding or removing other nodes
    changes none."""
    masters = tuple(_seed_address(by_name[n], hosts) for n in config.cluster.node_names(master_eligible_only=True))
    if lifecycle.recorded_seeds and set(lifecycle.recorded_seeds) & set(masters):
        return lifecycle.recorded_seeds
    return tuple(_seed_address(by_name[n], hosts) for n in config.cluster.bootstrap_masters if n in by_name) or masters


def _seed_address(slot: NodeSlot, hosts: Mapping[str, HostPlan]) -> str:
    if slot.host is None:
        return slot.name  # the node's network alias on the shared Docker network
    return f"{hosts[slot.host].address}:{slot.transport_port}"


def _ips(published: list[str]) -> tuple[str, ...]:
    """Loopback addresses, and the host address the node is published on (not 0.0.0.0 or ::)."""
    ips = list(LOOPBACK_IPS)
    for address in published:
        if _is_ip(address) and not ipaddress.ip_address(address).is_unspecified and address not in ips:
            ips.append(address)
    return tuple(ips)


def security_settings(tls: TlsFiles) -> dict[str, SettingValue]:
    settings: dict[str, SettingValue] = {
        "xpack.security.enabled": True,
        "xpack.security.enrollment.enabled": False,
        "xpack.license.self_generated.type": "basic",
        # Transport peers dial each other by container or host address, which not every certificate
        # names: check the chain, not the host name (as Elastic's compose does).
        "xpack.security.transport.ssl.verification_mode": "certificate",
    }
    for layer in ("http", "transport"):
        prefix = f"xpack.security.{layer}.ssl"
        settings |= {
            f"{prefix}.enabled": True,
            f"{prefix}.key": tls.key,
            f"{prefix}.certificate": tls.certificate,
            f"{prefix}.certificate_authorities": [tls.ca],
        }
    return settings


def _kibana_plan(config: StackConfig, host: HostPlan | None, es_urls: tuple[str, ...]) -> KibanaPlan:
    ca_file = f"{KIBANA_CONFIG_DIR}/certs/ca/ca.crt"
    return KibanaPlan(
        names=tuple(f"{config.cluster.name}-kibana-{i}" for i in range(config.kibana.replicas)),
        version=config.kibana_version,
        memory_bytes=config.kibana.memory,
        host=host,
        host_ports=tuple(config.kibana.port + i for i in range(config.kibana.replicas)),
        bind_ip=host.bind_ip if host else config.exposure.bind_address,
        ca_file=ca_file,
        settings=kibana_settings(es_urls, ca_file),
    )


def kibana_settings(es_urls: Sequence[str], ca_file: str) -> dict[str, SettingValue]:
    """kibana.yml: ES over HTTPS as kibana_system, trusting the cluster CA and checking host names.
    The password and encryption keys are not here: they come from a keystore or Secret."""
    return {
        "server.host": "0.0.0.0",
        "server.shutdownTimeout": "5s",
        "elasticsearch.hosts": list(es_urls),
        "elasticsearch.username": KIBANA_USER,
        "elasticsearch.ssl.certificateAuthorities": [ca_file],
        "elasticsearch.ssl.verificationMode": "full",
        "monitoring.ui.container.elasticsearch.enabled": True,
    }


def render_yaml(settings: Mapping[str, SettingValue]) -> str:
    """`elasticsearch.yml` / `kibana.yml` content: flat dotted keys, sorted for stable diffs."""
    return yaml.dump(dict(settings), Dumper=_SafeDumper, sort_keys=True, default_flow_style=False)
