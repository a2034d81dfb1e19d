"""The stack config (`Pulumi.<stack>.yaml`) as pydantic models, validated before any resource exists.

Each top-level field of `StackConfig` is one Pulumi config key in the project's namespace
(`elastic-stack:cluster`, …). Every bad value fails with the key path and the reason.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    model_validator,
)

from escluster.units import GIB, MIB, jvm_size, parse_size

DEFAULT_VERSION = "9.5.2"
MIN_MAJOR_VERSION = 8
# Elasticsearch stops using compressed object pointers just under 32 GiB of heap.
MAX_HEAP_BYTES = 31 * GIB
ES_MEMORY_FLOOR_BYTES = 1 * GIB
KIBANA_MEMORY_FLOOR_BYTES = 1 * GIB
# Elastic's setup loops forever on a shorter kibana_system password.
MIN_PASSWORD_LENGTH = 6
MAX_NODE_NAME_LENGTH = 63

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VERSION = re.compile(r"^(?P<major>[0-9]+)\.(?P<minor>[0-9]+)\.(?P<patch>[0-9]+)$")


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"{value!r} is not a size; write it as a string such as 512m, 2g or 2Gi")
    return parse_size(value)


def _version(value: str) -> str:
    match = _VERSION.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a release version such as {DEFAULT_VERSION}")
    if int(match["major"]) < MIN_MAJOR_VERSION:
        raise ValueError(f"version {value} is not supported; use {MIN_MAJOR_VERSION}.0.0 or newer")
    return value


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def version_tuple(version: str) -> tuple[int, int, int]:
    major, minor, patch = version.split(".")
    return int(major), int(minor), int(patch)


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
# Sizes are held in bytes and written back in JVM units.
Size = Annotated[int, BeforeValidator(_size), PlainSerializer(jvm_size, return_type=str)]
Version = Annotated[str, AfterValidator(_version)]
Port = Annotated[int, Field(ge=1, le=65535)]
IPAddress = Annotated[str, AfterValidator(_ip_address)]
Password = Annotated[SecretStr, Field(min_length=MIN_PASSWORD_LENGTH)]


class Target(enum.StrEnum):
    docker = "docker"
    swarm = "swarm"
    kubernetes = "kubernetes"


class Role(enum.StrEnum):
    master = "master"
    voting_only = "voting_only"
    data = "data"
    data_content = "data_content"
    data_hot = "data_hot"
    data_warm = "data_warm"
    data_cold = "data_cold"
    data_frozen = "data_frozen"
    ingest = "ingest"
    ml = "ml"
    remote_cluster_client = "remote_cluster_client"
    transform = "transform"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeGroup(Strict):
    """Nodes that share roles and sizes (a node set in ECK, a StatefulSet on Kubernetes)."""

    name: DnsLabel = Field(description="Group name; node names are `<cluster>-<group>-<index>`.")
    count: int = Field(1, ge=0, description="Number of nodes in the group.")
    roles: list[Role] = Field(
        default_factory=lambda: [Role.master, Role.data, Role.ingest],
        description="`node.roles` of every node in the group; `[]` makes coordinating-only nodes.",
    )
    memory: Size = Field(2 * GIB, description="Memory limit of each node's container or pod.")
    heap: Size | None = Field(None, description="JVM heap (Xms = Xmx); default half the memory limit, at most 31g.")
    storage: Size = Field(10 * GIB, description="Data volume size (Kubernetes volume claims).")
    placement: list[DnsLabel] = Field(
        default_factory=list,
        description="Hosts or swarm nodes the group's nodes go to, in turn (targets that place nodes).",
    )

    @property
    def heap_bytes(self) -> int:
        if self.heap is not None:
            return self.heap
        return min(self.memory // 2 // MIB * MIB, MAX_HEAP_BYTES)

    @property
    def master_eligible(self) -> bool:
        return Role.master in self.roles

    @property
    def electable_master(self) -> bool:
        """Master-eligible and not voting-only: a node that can actually become master."""
        return self.master_eligible and Role.voting_only not in self.roles

    @model_validator(mode="after")
    def _check(self) -> NodeGroup:
        if len(set(self.roles)) != len(self.roles):
            raise ValueError("roles: a role is listed twice")
        if Role.voting_only in self.roles and Role.master not in self.roles:
            raise ValueError("roles: voting_only needs the master role as well")
        if self.memory < ES_MEMORY_FLOOR_BYTES:
            raise ValueError(f"memory: {jvm_size(self.memory)} is below the floor of {jvm_size(ES_MEMORY_FLOOR_BYTES)}")
        if self.heap is not None and self.heap * 2 > self.memory:
            raise ValueError(
                f"heap: {jvm_size(self.heap)} is more than 50% of the memory limit {jvm_size(self.memory)}"
            )
        if self.heap is not None and self.heap > MAX_HEAP_BYTES:
            raise ValueError(f"heap: {jvm_size(self.heap)} is above 31g (compressed object pointers)")
        return self


class Cluster(Strict):
    name: DnsLabel = Field(description="`cluster.name`; also the prefix of every node and resource name.")
    version: Version = Field(DEFAULT_VERSION, description="Elasticsearch release (8.0.0 or newer).")
    node_groups: list[NodeGroup] = Field(min_length=1, description="The cluster's node groups.")
    single_node: bool | None = Field(
        None,
        description="`discovery.type: single-node`; default: on when the cluster has exactly one node.",
    )
    memory_lock: bool | None = Field(
        None,
        description="`bootstrap.memory_lock`; default on for `docker` (memlock ulimit -1), off elsewhere.",
    )

    @property
    def node_count(self) -> int:
        return sum(group.count for group in self.node_groups)

    @property
    def is_single_node(self) -> bool:
        return self.single_node if self.single_node is not None else self.node_count == 1

    @model_validator(mode="after")
    def _check(self) -> Cluster:
        seen: set[str] = set()
        for index, group in enumerate(self.node_groups):
            if group.name in seen:
                raise ValueError(f"node_groups[{index}].name: {group.name!r} is used by another node group")
            seen.add(group.name)
            longest = f"{self.name}-{group.name}-{max(group.count - 1, 0)}"
            if len(longest) > MAX_NODE_NAME_LENGTH:
                raise ValueError(
                    f"node_groups[{index}].name: node name {longest!r} is longer than {MAX_NODE_NAME_LENGTH} characters"
                )
        if self.node_count == 0:
            raise ValueError("node_groups: the cluster has no nodes (every count is 0)")
        if not any(group.electable_master and group.count > 0 for group in self.node_groups):
            raise ValueError(
                "node_groups: no master-eligible node; give at least one node the master role without voting_only"
            )
        if self.single_node and self.node_count > 1:
            raise ValueError(f"single_node: single-node mode needs exactly one node, the cluster has {self.node_count}")
        return self


class Security(Strict):
    elastic_password: Password | None = Field(
        None,
        description="Password of the `elastic` user; generated when unset. Set it only with `--secret`.",
    )
    kibana_system_password: Password | None = Field(
        None,
        description="Password of the `kibana_system` user; generated when unset. Set it only with `--secret`.",
    )
    cert_validity_days: int = Field(1095, ge=1, le=3650, description="Validity of the CA and node certificates.")


class Kibana(Strict):
    replicas: int = Field(1, ge=1, description="Number of Kibana instances.")
    memory: Size = Field(GIB, description="Memory limit of each Kibana instance.")
    port: Port = Field(
        5601, description="Published host port of the first instance; the next ones take the following ports."
    )
    version: Version | None = Field(None, description="Kibana release; default the cluster's version.")

    @model_validator(mode="after")
    def _check(self) -> Kibana:
        if self.memory < KIBANA_MEMORY_FLOOR_BYTES:
            raise ValueError(
                f"memory: {jvm_size(self.memory)} is below the floor of {jvm_size(KIBANA_MEMORY_FLOOR_BYTES)}"
            )
        if self.port + self.replicas - 1 > 65535:
            raise ValueError(f"port: {self.replicas} instances from port {self.port} run past 65535")
        return self


class Exposure(Strict):
    bind_address: IPAddress = Field("127.0.0.1", description="Host address published ports are bound to.")
    http_port: Port | None = Field(
        9200, description="Published host port of the first node's HTTP API; null publishes none."
    )


class StackConfig(Strict):
    target: Target = Field(Target.docker, description="Where the stack runs: docker, swarm or kubernetes.")
    cluster: Cluster
    security: Security = Field(default_factory=Security)
    kibana: Kibana = Field(default_factory=Kibana)
    exposure: Exposure = Field(default_factory=Exposure)

    @property
    def kibana_version(self) -> str:
        return self.kibana.version or self.cluster.version

    @property
    def memory_lock(self) -> bool:
        if self.cluster.memory_lock is not None:
            return self.cluster.memory_lock
        return self.target is Target.docker

    def published_host_ports(self) -> list[tuple[str, int]]:
        """Every host port the stack publishes, with the config key that asks for it."""
        ports = [("kibana.port", self.kibana.port + i) for i in range(self.kibana.replicas)]
        if self.exposure.http_port is not None:
            ports.insert(0, ("exposure.http_port", self.exposure.http_port))
        return ports

    @model_validator(mode="after")
    def _check(self) -> StackConfig:
        kibana = version_tuple(self.kibana_version)
        cluster = version_tuple(self.cluster.version)
        if kibana[0] != cluster[0] or kibana > cluster:
            raise ValueError(
                f"kibana.version: Kibana {self.kibana_version} cannot run against Elasticsearch "
                f"{self.cluster.version}; use the same major version, not newer than the cluster"
            )
        if self.target is Target.swarm and self.cluster.memory_lock:
            raise ValueError("cluster.memory_lock: Swarm services cannot set the memlock ulimit; leave it off")
        if self.target is Target.docker:
            for index, group in enumerate(self.cluster.node_groups):
                if group.placement:
                    raise ValueError(
                        f"cluster.node_groups[{index}].placement: the docker target runs on one engine "
                        "and places nothing; remove placement"
                    )
        owners: dict[int, str] = {}
        for key, port in self.published_host_ports():
            if port in owners:
                raise ValueError(f"{key}: host port {port} is already published by {owners[port]}")
            owners[port] = key
        return self
