"""The sections of the stack config (`cluster`, `security`, `kibana`, `exposure`), each validated on its
own; escluster.config composes them and checks what spans sections."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import semver
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    model_validator,
)

from escluster.fields import DnsLabel, IPAddress, Strict
from escluster.security import CERT_RENEWAL_DAYS, MIN_CERT_VALIDITY_DAYS
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


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"{value!r} is not a size; write it as a string such as 512m, 2g or 2Gi")
    return parse_size(value)


def _version(value: str) -> str:
    try:
        parsed = semver.Version.parse(value)
    except ValueError:
        parsed = None
    # Elastic publishes images for release versions only: no pre-release or build part.
    if parsed is None or parsed.prerelease or parsed.build:
        raise ValueError(f"{value!r} is not a release version such as {DEFAULT_VERSION}")
    if parsed.major < MIN_MAJOR_VERSION:
        raise ValueError(f"version {value} is not supported; use {MIN_MAJOR_VERSION}.0.0 or newer")
    return value


def version_tuple(version: str) -> tuple[int, int, int]:
    parsed = semver.Version.parse(version)
    return parsed.major, parsed.minor, parsed.patch


# Sizes are held in bytes and written back in JVM units.
Size = Annotated[int, BeforeValidator(_size), PlainSerializer(jvm_size, return_type=str)]
Version = Annotated[str, AfterValidator(_version)]
Port = Annotated[int, Field(ge=1, le=65535)]
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
    placement: list[str] = Field(
        default_factory=list,
        description="Where the group's nodes go, in turn: docker host names, or swarm label selectors `key=value`.",
    )
    http_port: Port | None = Field(None, description="Across hosts: first host port for the group's HTTP on each host.")
    transport_port: Port | None = Field(
        None, description="Across hosts: first host port for the group's transport on each host."
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
    initial_master_nodes: list[str] | None = Field(
        None,
        description="Node names that bootstrap a new cluster and seed discovery; default every master-eligible node.",
    )
    bootstrapped: bool = Field(
        False,
        description="Adopt a cluster that formed outside this stack's memory: no node gets "
        "`cluster.initial_master_nodes`, changes roll one node at a time. The program knows by itself otherwise.",
    )

    def node_names(self, master_eligible_only: bool = False) -> list[str]:
        return [
            f"{self.name}-{group.name}-{index}"
            for group in self.node_groups
            if group.master_eligible or not master_eligible_only
            for index in range(group.count)
        ]

    @property
    def bootstrap_masters(self) -> list[str]:
        if self.initial_master_nodes is not None:
            return list(self.initial_master_nodes)
        return self.node_names(master_eligible_only=True)

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
        self._check_bootstrap()
        return self

    def _check_bootstrap(self) -> None:
        listed = self.initial_master_nodes
        if listed is None:
            return
        if self.is_single_node:
            raise ValueError("initial_master_nodes: a single-node cluster bootstraps alone; remove the list")
        masters = self.node_names(master_eligible_only=True)
        if not listed:
            raise ValueError("initial_master_nodes: the list is empty")
        if len(set(listed)) != len(listed):
            raise ValueError("initial_master_nodes: a node is listed twice")
        if len(listed) > len(masters):
            raise ValueError(
                f"initial_master_nodes: lists {len(listed)} nodes but the cluster has only "
                f"{len(masters)} master-eligible nodes"
            )
        for name in listed:
            if name not in masters:
                raise ValueError(f"initial_master_nodes: {name!r} is not a master-eligible node ({masters})")


class Security(Strict):
    elastic_password: Password | None = Field(
        None,
        description="Password of the `elastic` user; generated when unset. Set it only with `--secret`.",
    )
    kibana_system_password: Password | None = Field(
        None,
        description="Password of the `kibana_system` user; generated when unset. Set it only with `--secret`.",
    )
    cert_validity_days: int = Field(
        1095,
        ge=MIN_CERT_VALIDITY_DAYS,
        le=3650,
        description=f"Validity of the CA and node certificates; `pulumi up` renews them in their last "
        f"{CERT_RENEWAL_DAYS} days.",
    )
    ca_generation: int = Field(
        1,
        ge=1,
        description="The cluster CA's generation. Raise it by one to rotate the CA (a new key, after a leak): "
        "three `pulumi up`s introduce the new CA, re-issue the node certificates, then drop the old CA.",
    )


class Kibana(Strict):
    replicas: int = Field(1, ge=1, description="Number of Kibana instances.")
    memory: Size = Field(GIB, description="Memory limit of each Kibana instance.")
    port: Port = Field(
        5601, description="Published host port of the first instance; the next ones take the following ports."
    )
    version: Version | None = Field(None, description="Kibana release; default the cluster's version.")
    host: DnsLabel | None = Field(None, description="Docker host that runs Kibana; default the first host.")

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
        9200, description="Published host port of the first node's HTTP API (across hosts: of every node)."
    )
    transport_port: Port = Field(9300, description="Across hosts: first published transport port on each host.")
