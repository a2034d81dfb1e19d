"""What the last successful `pulumi up` deployed, as the stack remembers it in its `cluster_state` output,
and the changes from there that the program refuses before touching anything.

Pure Python. `escluster.load.read_previous_state` reads the output back at the start of the next run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from escluster.config import StackConfig, Target
from escluster.units import jvm_size

STATE_OUTPUT = "cluster_state"
STATE_FORMAT = 1


@dataclass(frozen=True)
class GroupStorage:
    size_bytes: int
    storage_class: str | None


@dataclass(frozen=True)
class ClusterState:
    """A deployed cluster as the program left it. `formed`: the setup step reached the cluster and set the
    passwords, which needs an elected master, so the cluster had formed."""

    formed: bool
    cluster_name: str
    version: str
    kibana_version: str
    nodes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    storage: Mapping[str, GroupStorage] = field(default_factory=dict)
    # Kubernetes: the namespace holding the data claims.
    namespace: str | None = None

    def as_output(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "formed": self.formed,
            "cluster_name": self.cluster_name,
            "namespace": self.namespace,
            "version": self.version,
            "kibana_version": self.kibana_version,
            "nodes": {name: list(roles) for name, roles in sorted(self.nodes.items())},
            "storage": {
                group: {"size_bytes": s.size_bytes, "storage_class": s.storage_class}
                for group, s in sorted(self.storage.items())
            },
        }


def parse_state(value: Any) -> ClusterState | None:
    """The state a `cluster_state` output holds, or None when the stack has none (a new stack)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("format") != STATE_FORMAT:
        raise ValueError(f"the stack output {STATE_OUTPUT} is not one this program wrote (format {STATE_FORMAT})")
    return ClusterState(
        formed=bool(value["formed"]),
        cluster_name=str(value["cluster_name"]),
        namespace=value.get("namespace"),
        version=str(value["version"]),
        kibana_version=str(value["kibana_version"]),
        nodes={str(name): tuple(roles) for name, roles in value["nodes"].items()},
        storage={
            str(group): GroupStorage(int(s["size_bytes"]), s.get("storage_class"))
            for group, s in value["storage"].items()
        },
    )


def planned_state(config: StackConfig, *, formed: bool) -> ClusterState:
    """The state this run deploys."""
    cluster = config.cluster
    storage = {}
    if config.target is Target.kubernetes:
        storage = {
            f"{cluster.name}-{group.name}": GroupStorage(group.storage, config.k8s.storage_class)
            for group in cluster.node_groups
        }
    nodes = {
        f"{cluster.name}-{group.name}-{index}": tuple(str(role) for role in group.roles)
        for group in cluster.node_groups
        for index in range(group.count)
    }
    namespace = config.k8s.namespace if config.target is Target.kubernetes else None
    return ClusterState(formed, cluster.name, cluster.version, config.kibana_version, nodes, storage, namespace)


def refused_changes(previous: ClusterState | None, config: StackConfig) -> list[str]:
    """`key path: reason` for each change from the deployed cluster that cannot be made safely."""
    if previous is None:
        return []
    errors = []
    planned = planned_state(config, formed=previous.formed)
    if planned.cluster_name != previous.cluster_name:
        errors.append(
            f"cluster.name: the stack runs cluster {previous.cluster_name}; another name would start a new, empty "
            f"cluster beside its data (kept in {previous.cluster_name}'s volumes). Deploy a new cluster in a new stack"
        )
    if previous.namespace is not None and planned.namespace != previous.namespace:
        errors.append(
            f"kubernetes.namespace: the cluster's data claims are in namespace {previous.namespace}; pods in "
            f"{planned.namespace} would start on empty volumes, without the cluster"
        )
    for index, group in enumerate(config.cluster.node_groups):
        name = f"{config.cluster.name}-{group.name}"
        before, after = previous.storage.get(name), planned.storage.get(name)
        if before is None or after is None:
            continue
        key = f"cluster.node_groups[{index}].storage"
        if after.size_bytes < before.size_bytes:
            errors.append(
                f"{key}: {jvm_size(after.size_bytes)} is smaller than the {jvm_size(before.size_bytes)} the data "
                "volumes have; Kubernetes cannot shrink a volume claim"
            )
        if after.storage_class != before.storage_class:
            was = before.storage_class or "the default class"
            errors.append(
                f"kubernetes.storage_class: node group {group.name} keeps its data on {was}; a claim cannot move "
                "to another class (to move the data, add a node group on the new class, let the shards move, "
                "then remove the old group)"
            )
    return errors
