"""What this run may do to the cluster the stack runs, decided from the config and the stack's last state.

Pure Python. The rules, and where they come from:
- bootstrap once: `cluster.initial_master_nodes` only until the cluster has formed (Elasticsearch's
  "bootstrapping a cluster"; on a node that joined a cluster, `ClusterBootstrapService` only warns, and
  Elastic asks to remove it);
- a formed cluster changes one node at a time, nodes without the master role first (Elastic's rolling
  upgrade order: "Upgrade the master-eligible nodes last"), and removes nodes after draining them;
- refused before anything changes: a downgrade (`NodeMetadata.verifyUpgradeToCurrentVersion`: "cannot
  downgrade a node"), a major upgrade from below the minor Elastic requires (8.19, or 8.18 into 9.0), a
  jump of two majors, removing half or more of the master-eligible nodes at once ("if you shut down half
  or more of the master-eligible nodes all at the same time then the cluster will normally become
  unavailable"), removing the last data node, a node losing its data roles (`NodeEnvironment`: a node
  without a data role refuses to start on shard data), and what Kubernetes cannot do to a claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from escluster.config import StackConfig
from escluster.sections import version_tuple
from escluster.state import ClusterState, planned_state
from escluster.units import jvm_size

DATA_ROLES = frozenset({"data", "data_content", "data_hot", "data_warm", "data_cold", "data_frozen"})


def major_upgrade_floor(target: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """The oldest release of the previous major that may upgrade to `target` (elastic/docs-content
    deploy-manage/upgrade/prepare-to-upgrade.md: 8.19, or 8.18 into 9.0.x); None where no rule is known."""
    if target[0] == 9:
        return (8, 18, 0) if target[:2] == (9, 0) else (8, 19, 0)
    return None


@dataclass(frozen=True)
class RemovedNode:
    name: str
    master_eligible: bool
    holds_data: bool


@dataclass(frozen=True)
class CaPlan:
    """The cluster CAs this run uses: `trusted`, the generations in every trust bundle (oldest first);
    `issuing`, the one that signs the node certificates. A renewal keeps a CA's key (as ECK's
    renewCAFromExisting does), so what it signed still chains to it. A new key (a rotation) takes three
    runs, each changing the nodes one at a time, so any two nodes, Kibana and the setup step trust each
    other's certificates at every moment:
    1. `introducing`: every bundle trusts both CAs, the certificates still come from the old one;
    2. `reissuing`: the certificates come from the new CA, both still trusted;
    3. `drop_after_check`: once every node presents a certificate from the new CA, the old one leaves."""

    trusted: tuple[int, ...]
    issuing: int
    drop_after_check: bool = False

    @property
    def introducing(self) -> bool:
        return len(self.trusted) > 1 and self.issuing == self.trusted[0]

    @property
    def reissuing(self) -> bool:
        return len(self.trusted) > 1 and self.issuing == self.trusted[-1]

    def step(self) -> str:
        """What this run does of a rotation, for the operator; empty outside one."""
        if self.drop_after_check:
            return f"CA rotation, step 3 of 3: the old CA leaves the trust bundles (generation {self.issuing} only)"
        if self.reissuing:
            return (
                f"CA rotation, step 2 of 3: node certificates re-issued by CA generation {self.issuing}; "
                "run `pulumi up` again to drop the old CA"
            )
        if self.introducing:
            return (
                f"CA rotation, step 1 of 3: every node trusts CA generations {self.trusted[0]} and "
                f"{self.trusted[-1]}; run `pulumi up` again to re-issue the certificates"
            )
        return ""


def ca_plan(generation: int, previous: ClusterState | None) -> CaPlan:
    """The CAs of this run, one step further than the last run's towards `generation`."""
    if previous is None:
        return CaPlan((generation,), generation)
    trusted, issuing = previous.ca_trusted, previous.ca_issuing
    if len(trusted) == 1:
        return CaPlan((issuing,), issuing) if generation == issuing else CaPlan((issuing, generation), issuing)
    if issuing == trusted[0]:
        return CaPlan(trusted, trusted[-1])
    return CaPlan((issuing,), issuing, drop_after_check=True)


@dataclass(frozen=True)
class Lifecycle:
    """`formed`: the cluster has formed, so nothing bootstraps and changes go one node at a time.
    `recorded_seeds`: the seed addresses the last run used. `removed`: nodes this run drains, then removes.
    `lingering`: nodes earlier runs removed, not planned again: they keep their exclusions while the
    cluster still lists them (Pulumi could not delete them).
    `upgrade`: the version changes, so between nodes a yellow cluster without moving shards will do
    (primaries on upgraded nodes cannot have replicas on older ones). `ca`: the CAs of this run.
    `recorded_nodes`: the nodes of the last state, the ones running when this run starts."""

    formed: bool
    recorded_seeds: tuple[str, ...] = ()
    removed: tuple[RemovedNode, ...] = ()
    lingering: tuple[RemovedNode, ...] = ()
    upgrade: bool = False
    ca: CaPlan = CaPlan((1,), 1)
    recorded_nodes: tuple[str, ...] = ()

    def state(
        self,
        config: StackConfig,
        seeds: tuple[str, ...],
        bootstrap_nodes: tuple[str, ...],
        still_listed: tuple[str, ...] = (),
    ) -> ClusterState:
        """The state to record once every step of this run on the cluster passed (`still_listed`: lingering
        nodes the cluster still lists, as this run's exclusions step found)."""
        drained = [*self.removed, *(n for n in self.lingering if n.name in still_listed)]
        return planned_state(
            config,
            formed=True,
            seeds=seeds,
            drained=tuple(n.name for n in drained),
            drained_masters=tuple(n.name for n in drained if n.master_eligible),
            ca=(self.ca.trusted, self.ca.issuing),
            bootstrap_nodes=bootstrap_nodes,
        )


def is_master(roles: Sequence[str]) -> bool:
    return "master" in roles


def holds_data(roles: Sequence[str]) -> bool:
    return bool(DATA_ROLES & set(roles))


def rollout_order(nodes: Mapping[str, Sequence[str]]) -> list[str]:
    """Node names in the order a change restarts them: without the master role first, then master-eligible
    (each in the plan's order)."""
    return [n for n, roles in nodes.items() if not is_master(roles)] + [
        n for n, roles in nodes.items() if is_master(roles)
    ]


def decide(config: StackConfig, previous: ClusterState | None) -> Lifecycle:
    cluster = config.cluster
    ca = ca_plan(config.security.ca_generation, previous)
    if previous is None or not previous.formed:
        # `cluster.bootstrapped` adopts a cluster formed outside this stack's memory.
        return Lifecycle(formed=cluster.bootstrapped, ca=ca)
    planned = planned_state(config, formed=True).nodes
    removed = tuple(
        RemovedNode(name, is_master(roles), holds_data(roles))
        for name, roles in sorted(previous.nodes.items())
        if name not in planned
    )
    lingering = tuple(
        RemovedNode(name, name in previous.drained_masters, holds_data=True)
        for name in previous.drained
        if name not in planned
    )
    upgrade = previous.version != cluster.version
    return Lifecycle(True, previous.seeds, removed, lingering, upgrade, ca, tuple(previous.nodes))


def refused_changes(previous: ClusterState | None, config: StackConfig) -> list[str]:
    """`key path: reason` for each change from the deployed cluster that cannot be made safely."""
    if previous is None:
        return []
    planned = planned_state(config, formed=previous.formed)
    return [
        *_identity_changes(previous, planned),
        *_version_changes(previous.version, planned.version),
        *_node_changes(previous, planned),
        *_storage_changes(previous, planned, config),
        *_ca_changes(previous, config.security.ca_generation),
    ]


def _ca_changes(previous: ClusterState, generation: int) -> list[str]:
    current = previous.ca_trusted[-1]
    if len(previous.ca_trusted) > 1 and generation != current:
        return [
            f"security.ca_generation: the rotation to generation {current} is under way; keep {current} until "
            "it is done (two more `pulumi up`s at most)"
        ]
    if generation < current:
        return [f"security.ca_generation: {generation} is older than the CA in use ({current}); it only goes up"]
    if generation > current + 1:
        return [f"security.ca_generation: rotate one generation at a time ({current} to {current + 1})"]
    return []


def _identity_changes(previous: ClusterState, planned: ClusterState) -> list[str]:
    errors = []
    # A state written before the name was recorded has none to compare.
    if previous.cluster_name and planned.cluster_name != previous.cluster_name:
        errors.append(
            f"cluster.name: the stack runs cluster {previous.cluster_name}; another name would start a new, empty "
            f"cluster beside its data (kept in {previous.cluster_name}'s volumes). Deploy a new cluster in a new stack"
        )
    if previous.namespace is not None and planned.namespace != previous.namespace:
        errors.append(
            f"kubernetes.namespace: the cluster's data claims are in namespace {previous.namespace}; pods in "
            f"{planned.namespace} would start on empty volumes, without the cluster"
        )
    return errors


def _version_changes(running: str, wanted: str) -> list[str]:
    before, after = version_tuple(running), version_tuple(wanted)
    if after < before:
        return [
            f"cluster.version: {wanted} is older than the running {running}; Elasticsearch cannot downgrade a node "
            "(restore a snapshot into a new cluster instead)"
        ]
    if after[0] > before[0] + 1:
        return [f"cluster.version: {running} cannot upgrade to {wanted} in one step; upgrade one major at a time"]
    floor = major_upgrade_floor(after) if after[0] == before[0] + 1 else None
    if floor is not None and before < floor:
        needed = f"{floor[0]}.{floor[1]}"
        return [
            f"cluster.version: {wanted} can only be reached from {needed} or newer; upgrade the running "
            f"{running} to the latest {needed}.x first"
        ]
    return []


def _node_changes(previous: ClusterState, planned: ClusterState) -> list[str]:
    errors = []
    previous_masters = [name for name, roles in previous.nodes.items() if is_master(roles)]
    # A master-eligible node leaves the voting configuration whether it goes or loses the role.
    leaving = sorted(name for name in previous_masters if not is_master(planned.nodes.get(name, ())))
    if leaving and len(leaving) * 2 >= len(previous_masters):
        errors.append(
            f"cluster.node_groups: removes {len(leaving)} of the {len(previous_masters)} master-eligible nodes "
            f"({', '.join(leaving)}), or their master role; half or more at once loses the cluster's quorum. "
            "Change fewer per `up`"
        )
    planned_masters = [name for name, roles in planned.nodes.items() if is_master(roles)]
    if len(previous_masters) >= 3 and len(planned_masters) == 2:
        errors.append(
            "cluster.node_groups: leaves two master-eligible nodes; Elasticsearch keeps the voting configuration "
            "odd, so one of them holds the only vote and the cluster stops whenever it restarts. Keep three"
        )
    removed_data = sorted(n for n, roles in previous.nodes.items() if holds_data(roles) and n not in planned.nodes)
    added_data = sorted(n for n, roles in planned.nodes.items() if holds_data(roles) and n not in previous.nodes)
    if removed_data and added_data:
        errors.append(
            f"cluster.node_groups: adds data nodes ({', '.join(added_data)}) and removes others "
            f"({', '.join(removed_data)}) at once; the removed nodes' shards are moved off before anything "
            "changes, so they could only go to the nodes that stay. Add the new nodes with one `pulumi up`, "
            "remove the old ones with the next"
        )
    had_data = any(holds_data(roles) for roles in previous.nodes.values())
    if had_data and not any(holds_data(roles) for roles in planned.nodes.values()):
        errors.append(
            "cluster.node_groups: removes the last node with a data role; the cluster's data has nowhere to go"
        )
    for name, roles in planned.nodes.items():
        before = previous.nodes.get(name)
        if before is not None and holds_data(before) and not holds_data(roles):
            errors.append(
                f"cluster.node_groups: {name} would lose its data role while holding shards, and Elasticsearch "
                "refuses to start it so; add a node group with the new roles and remove this one"
            )
    return errors


def _storage_changes(previous: ClusterState, planned: ClusterState, config: StackConfig) -> list[str]:
    errors = []
    for index, group in enumerate(config.cluster.node_groups):
        name = f"{config.cluster.name}-{group.name}"
        before, after = previous.storage.get(name), planned.storage.get(name)
        if before is None or after is None:
            continue
        if after.size_bytes < before.size_bytes:
            errors.append(
                f"cluster.node_groups[{index}].storage: {jvm_size(after.size_bytes)} is smaller than the "
                f"{jvm_size(before.size_bytes)} the data volumes have; Kubernetes cannot shrink a volume claim"
            )
        if after.storage_class != before.storage_class:
            was = before.storage_class or "the default class"
            errors.append(
                f"kubernetes.storage_class: node group {group.name} keeps its data on {was}; a claim cannot move "
                "to another class (to move the data, add a node group on the new class, let the shards move, "
                "then remove the old group)"
            )
    return errors
