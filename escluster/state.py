"""What the last successful `pulumi up` deployed, as the stack remembers it in its `cluster_state` output.

Pure Python. `escluster.load.read_previous_state` reads the output back at the start of the next run;
`escluster.changes` decides from it what this run may do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from escluster.config import StackConfig
from escluster.sections import Target

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
    # Docker and Swarm: the node names that seed discovery, kept while one of them is still a master.
    seeds: tuple[str, ...] = ()
    # Nodes the run that wrote this state drained and removed (and which of them were master-eligible):
    # their exclusions are cleared next time.
    drained: tuple[str, ...] = ()
    drained_masters: tuple[str, ...] = ()
    # CA generations in every trust bundle (oldest first), and the one that signs the node certificates.
    ca_trusted: tuple[int, ...] = (1,)
    ca_issuing: int = 1
    # The nodes whose settings still name `cluster.initial_master_nodes` (the run that formed the cluster
    # sets it; the next drops it): `verify` expects exactly these to carry it.
    bootstrap_nodes: tuple[str, ...] = ()

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
            "seeds": list(self.seeds),
            "drained": list(self.drained),
            "drained_masters": list(self.drained_masters),
            "ca": {"trusted": list(self.ca_trusted), "issuing": self.ca_issuing},
            "bootstrap_nodes": list(self.bootstrap_nodes),
        }


def parse_state(value: Any) -> ClusterState | None:
    """The state a `cluster_state` output holds, or None when the stack has none (a new stack)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("format") != STATE_FORMAT:
        raise ValueError(f"the stack output {STATE_OUTPUT} is not one this program wrote (format {STATE_FORMAT})")
    ca = value.get("ca") or {}
    return ClusterState(
        formed=bool(value["formed"]),
        cluster_name=str(value.get("cluster_name", "")),
        namespace=value.get("namespace"),
        version=str(value["version"]),
        kibana_version=str(value["kibana_version"]),
        nodes={str(name): tuple(roles) for name, roles in value["nodes"].items()},
        storage={
            str(group): GroupStorage(int(s["size_bytes"]), s.get("storage_class"))
            for group, s in value["storage"].items()
        },
        # Keys later versions of the program added: an older state has none of them.
        seeds=tuple(value.get("seeds", ())),
        drained=tuple(value.get("drained", ())),
        drained_masters=tuple(value.get("drained_masters", ())),
        ca_trusted=tuple(int(g) for g in ca.get("trusted", (1,))),
        ca_issuing=int(ca.get("issuing", 1)),
        bootstrap_nodes=tuple(value.get("bootstrap_nodes", ())),
    )


def planned_state(
    config: StackConfig,
    *,
    formed: bool,
    seeds: tuple[str, ...] = (),
    drained: tuple[str, ...] = (),
    drained_masters: tuple[str, ...] = (),
    ca: tuple[tuple[int, ...], int] | None = None,
    bootstrap_nodes: tuple[str, ...] = (),
) -> ClusterState:
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
    generation = config.security.ca_generation
    trusted, issuing = ca or ((generation,), generation)
    return ClusterState(
        formed,
        cluster.name,
        cluster.version,
        config.kibana_version,
        nodes,
        storage,
        namespace,
        seeds,
        drained,
        drained_masters,
        trusted,
        issuing,
        bootstrap_nodes,
    )
