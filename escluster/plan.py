"""The cluster plan: every node's Elasticsearch settings, derived from a validated stack config.

Pure Python (no Pulumi): this is where the discovery, bootstrap, heap and TLS rules live.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from escluster.config import StackConfig
from escluster.units import jvm_size

ES_HOME = "/usr/share/elasticsearch"
ES_CONFIG_DIR = f"{ES_HOME}/config"
ES_DATA_DIR = f"{ES_HOME}/data"
KIBANA_HOME = "/usr/share/kibana"
KIBANA_CONFIG_DIR = f"{KIBANA_HOME}/config"
# Secret files are uploaded here, never put in env (the images read `*_FILE` variables or a keystore).
SECRETS_DIR = "/run/secrets"
ELASTIC_PASSWORD_FILE = f"{SECRETS_DIR}/elastic_password"
HTTP_PORT = 9200
TRANSPORT_PORT = 9300
KIBANA_PORT = 5601
KIBANA_USER = "kibana_system"

SettingValue = str | int | bool | list[str]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
class NodePlan:
    name: str
    group: str
    roles: tuple[str, ...]
    master_eligible: bool
    memory_bytes: int
    heap_bytes: int
    storage_bytes: int
    tls: TlsFiles
    # Names and addresses clients use to reach the node: they go into its certificate.
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    settings: Mapping[str, SettingValue]
    http_host_port: int | None

    @property
    def jvm_options(self) -> str:
        size = jvm_size(self.heap_bytes)
        return f"-Xms{size} -Xmx{size}"

    @property
    def https_url(self) -> str:
        return f"https://{self.name}:{HTTP_PORT}"


@dataclass(frozen=True)
class KibanaPlan:
    names: tuple[str, ...]
    version: str
    memory_bytes: int
    host_ports: tuple[int, ...]
    ca_file: str
    settings: Mapping[str, SettingValue]


@dataclass(frozen=True)
class ClusterPlan:
    cluster_name: str
    version: str
    nodes: tuple[NodePlan, ...]
    kibana: KibanaPlan
    bind_address: str
    memory_lock: bool
    cert_validity_hours: int
    single_node: bool
    seed_hosts: tuple[str, ...] = field(default=())
    initial_master_nodes: tuple[str, ...] = field(default=())

    @property
    def http_exposed_node(self) -> NodePlan | None:
        return next((node for node in self.nodes if node.http_host_port is not None), None)


def node_name(cluster: str, group: str, index: int) -> str:
    return f"{cluster}-{group}-{index}"


def build_plan(config: StackConfig) -> ClusterPlan:
    cluster = config.cluster
    members = [
        (group, node_name(cluster.name, group.name, index))
        for group in cluster.node_groups
        for index in range(group.count)
    ]
    masters = tuple(name for group, name in members if group.master_eligible)
    single_node = cluster.is_single_node
    # Multi-node clusters find each other through the master-eligible nodes; a new cluster
    # bootstraps from exactly those, the same list on every master-eligible node.
    seed_hosts: tuple[str, ...] = () if single_node else masters
    initial_masters: tuple[str, ...] = () if single_node else masters
    http_exposed_node = members[0][1] if config.exposure.http_port is not None else None
    bind_address = ipaddress.ip_address(config.exposure.bind_address)

    nodes = []
    for group, name in members:
        tls = TlsFiles.under(ES_CONFIG_DIR, name)
        settings: dict[str, SettingValue] = {
            "cluster.name": cluster.name,
            "node.name": name,
            "node.roles": [str(role) for role in group.roles],
            "network.host": "0.0.0.0",
            "bootstrap.memory_lock": config.memory_lock,
            "path.data": ES_DATA_DIR,
            **_security_settings(tls),
        }
        if single_node:
            settings["discovery.type"] = "single-node"
        else:
            settings["discovery.seed_hosts"] = list(seed_hosts)
            if group.master_eligible:
                settings["cluster.initial_master_nodes"] = list(initial_masters)
        nodes.append(
            NodePlan(
                name=name,
                group=group.name,
                roles=tuple(str(role) for role in group.roles),
                master_eligible=group.master_eligible,
                memory_bytes=group.memory,
                heap_bytes=group.heap_bytes,
                storage_bytes=group.storage,
                tls=tls,
                dns_names=(name, "localhost"),
                ip_addresses=_node_ips(bind_address if name == http_exposed_node else None),
                settings=settings,
                http_host_port=config.exposure.http_port if name == http_exposed_node else None,
            )
        )

    return ClusterPlan(
        cluster_name=cluster.name,
        version=cluster.version,
        nodes=tuple(nodes),
        kibana=_kibana_plan(config, tuple(node.https_url for node in nodes)),
        bind_address=config.exposure.bind_address,
        memory_lock=config.memory_lock,
        cert_validity_hours=config.security.cert_validity_days * 24,
        single_node=single_node,
        seed_hosts=seed_hosts,
        initial_master_nodes=initial_masters,
    )


def _node_ips(published_on: IPAddress | None) -> tuple[str, ...]:
    """Loopback addresses, and the host address the node's HTTP port is published on."""
    ips = ["127.0.0.1", "::1"]
    if published_on is not None and not published_on.is_unspecified and str(published_on) not in ips:
        ips.append(str(published_on))
    return tuple(ips)


def _security_settings(tls: TlsFiles) -> dict[str, SettingValue]:
    settings: dict[str, SettingValue] = {
        "xpack.security.enabled": True,
        "xpack.security.enrollment.enabled": False,
        "xpack.license.self_generated.type": "basic",
        # Transport peers dial each other by container address, which no certificate names:
        # check the chain, not the host name (as Elastic's compose does).
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


def _kibana_plan(config: StackConfig, es_urls: tuple[str, ...]) -> KibanaPlan:
    ca_file = f"{KIBANA_CONFIG_DIR}/certs/ca/ca.crt"
    settings: dict[str, SettingValue] = {
        "server.host": "0.0.0.0",
        "server.shutdownTimeout": "5s",
        "elasticsearch.hosts": list(es_urls),
        "elasticsearch.username": KIBANA_USER,
        # The password and encryption keys live in Kibana's keystore, filled from secret files.
        "elasticsearch.ssl.certificateAuthorities": [ca_file],
        "elasticsearch.ssl.verificationMode": "full",
        "monitoring.ui.container.elasticsearch.enabled": True,
    }
    return KibanaPlan(
        names=tuple(f"{config.cluster.name}-kibana-{i}" for i in range(config.kibana.replicas)),
        version=config.kibana_version,
        memory_bytes=config.kibana.memory,
        host_ports=tuple(config.kibana.port + i for i in range(config.kibana.replicas)),
        ca_file=ca_file,
        settings=settings,
    )


def render_yaml(settings: Mapping[str, SettingValue]) -> str:
    """`elasticsearch.yml` / `kibana.yml` content: flat dotted keys, sorted for stable diffs."""
    return yaml.safe_dump(dict(settings), sort_keys=True, default_flow_style=False)
