"""RollingUpdates (Docker and Swarm): on a formed cluster, one Elasticsearch node changes at a time.

Pulumi runs independent steps in parallel; a resource waits only for the ones it depends on (its
registration waits for their steps to finish). So, on a formed cluster, a chain of cluster tasks
(components/docker/cluster_tasks.py, scripts in escluster/rolling.py):

    exclusions (to the nodes leaving) → drain (of this run's removed nodes) → baseline (health before)
      → prepare(node 1) → node 1 → gate(node 1) → prepare(node 2) → node 2 → gate(node 2) → …

in Elastic's order (nodes without the master role first). A prepare runs when its node's spec changes; a
gate when its node's spec or its container changes (Docker replaces a container; swarm updates a
service in place, which restarts its task), and also when it is created (a node added, or the first
`up` after the cluster formed). A gate that does not pass fails the `up`: no later node is touched,
and the next `up` runs the gate again. Nodes removed by this run are deleted by Pulumi after every step
of the run, so after the drain. A new cluster gets none of this: its nodes start together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import pulumi
import pulumi_command as command

from components import component_type
from components.docker.cluster_tasks import TASK_DIR, ClusterTasks
from components.shared.certificates import CaChecks
from components.shared.digest import spec_digest
from escluster.ca_checks import issuer_check_script
from escluster.changes import Lifecycle, is_master, rollout_order
from escluster.plan import NodePlan
from escluster.rolling import (
    LIBRARY,
    admin_stdin,
    baseline_script,
    container_preamble,
    drain_script,
    exclusions_script,
    gate_script,
    lingering_nodes,
    prepare_script,
)
from escluster.scripts import curl_config_user
from escluster.security import ADMIN_USER

NodeResource = TypeVar("NodeResource", bound=pulumi.Resource)


def task_stdin(admin_password: pulumi.Input[str], ca_cert_pem: pulumi.Input[str]) -> pulumi.Output[str]:
    """What the rolling scripts read on standard input: the admin's curl config line, then the CA."""
    return pulumi.Output.secret(
        pulumi.Output.all(admin_password, ca_cert_pem).apply(
            lambda values: admin_stdin(curl_config_user(ADMIN_USER, values[0]), values[1])
        )
    )


def container_ca_checks(tasks: ClusterTasks, generation: int) -> CaChecks:
    """Docker and Swarm: a node's trust bundle and certificate change when it restarts in the roll, and a
    rotation step is recorded only once every node passed its gate; so only the last step asks the nodes
    (the ones running, `tasks.es_urls`) which CA signed their certificate."""

    def issuer(name: str, ca_pem: pulumi.Output[str], parent: pulumi.Resource) -> command.local.Command:
        script = ca_pem.apply(lambda pem: issuer_check_script(tasks.es_urls, pem, generation, TASK_DIR))
        return tasks.command(name, script, stdin="", parent=parent)

    return CaChecks(issuer=issuer)


class RollingUpdates(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        *,
        nodes: Sequence[NodePlan],
        lifecycle: Lifecycle,
        tasks: ClusterTasks,
        admin_stdin: pulumi.Input[str],
        version: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`admin_stdin`: the admin's curl config line and the CA, as the scripts read them; `version`: the
        Elasticsearch version the change goes to (no node may already run a newer one)."""
        super().__init__(component_type("RollingUpdates"), name, None, opts)
        self._prefix, self._tasks, self._stdin, self._lifecycle = name, tasks, admin_stdin, lifecycle
        self._preamble = container_preamble(tasks.es_urls, TASK_DIR) + LIBRARY
        self._nodes = {node.name: node for node in nodes}
        self._order = rollout_order({node.name: node.roles for node in nodes})
        self._es_version = version
        # Master-eligible nodes the cluster should have: one missing holds back every other master.
        kept = set(lifecycle.recorded_nodes)
        self._masters = [n.name for n in nodes if is_master(n.roles) and n.name in kept]
        self._last: pulumi.Resource | None = None
        self._baseline: pulumi.Output[str] | None = None
        # What every task printed, for `finished`.
        self._steps: list[pulumi.Output[str]] = []
        # Removed nodes the cluster still lists (Pulumi could not delete them), for the next state.
        self.still_listed: pulumi.Output[tuple[str, ...]] = pulumi.Output.from_input(())
        if lifecycle.formed:
            exclusions = self._task(f"{name}-exclusions", exclusions_script(lifecycle.removed, lifecycle.lingering))
            self.still_listed = exclusions.stdout.apply(lingering_nodes)
            if lifecycle.removed:
                self._task(f"{name}-drain", drain_script(lifecycle.removed))
        self.register_outputs({})

    def _task(
        self, name: str, script: pulumi.Input[str], environment: dict[str, pulumi.Input[str]] | None = None
    ) -> command.local.Command:
        body = pulumi.Output.from_input(script).apply(lambda text: self._preamble + text)
        task = self._tasks.command(
            name,
            body,
            stdin=self._stdin,
            environment=environment,
            depends_on=[self._last] if self._last else [],
            parent=self,
        )
        self._last = task
        self._steps.append(task.stdout)
        return task

    def create_nodes(
        self,
        specs: Mapping[str, pulumi.Output[str]],
        create: Callable[[NodePlan, list[pulumi.Resource]], NodeResource],
        restarted: Callable[[NodeResource], pulumi.Input[str]] = lambda _: "",
    ) -> dict[str, NodeResource]:
        """Every node, in Elastic's order, made by `create(node, dependencies)`: on a formed cluster after a
        baseline of the cluster's health (run again when any node's spec changes), each between its prepare
        and its gate. `specs`: each node's digest of what it runs; `restarted`: a value of a created node
        that changes when it is replaced (a container's id)."""
        if self._lifecycle.formed:
            all_specs = spec_digest(*(specs[name] for name in self._order))
            baseline = self._task(f"{self._prefix}-health-before", baseline_script(), {"ES_NODE_SPECS": all_specs})
            self._baseline = baseline.stdout.apply(lambda out: out.strip().splitlines()[-1] if out.strip() else "")
        return {name: self._node(self._nodes[name], specs[name], create, restarted) for name in self._order}

    def _node(
        self,
        node: NodePlan,
        spec: pulumi.Output[str],
        create: Callable[[NodePlan, list[pulumi.Resource]], NodeResource],
        restarted: Callable[[NodeResource], pulumi.Input[str]],
    ) -> NodeResource:
        if not self._lifecycle.formed:
            return create(node, [])
        others = [m for m in self._masters if m != node.name] if is_master(node.roles) else []
        script = prepare_script(node.name, node.url, self._es_version, others)
        prepare = self._task(f"{node.name}-prepare", script, {"ES_NODE_SPEC": spec})
        created = create(node, [prepare])
        baseline = self._baseline if self._baseline is not None else pulumi.Output.from_input("")
        gate = baseline.apply(lambda line: gate_script(node.name, line, self._lifecycle.upgrade))
        self._last = created
        # The gate runs whenever its prepare ran (the prepare prints a new line each time), or the node restarted.
        environment = {"ES_NODE_SPEC": spec, "ES_NODE_RUN": restarted(created), "ES_NODE_PREPARED": prepare.stdout}
        self._task(f"{node.name}-gate", gate, environment)
        return created

    @property
    def last(self) -> list[pulumi.Resource]:
        """What Kibana waits for on a formed cluster: the last step of the roll (Elastic's order upgrades
        Elasticsearch before Kibana, and a newer Kibana refuses older nodes)."""
        return [self._last] if self._lifecycle.formed and self._last is not None else []

    @property
    def finished(self) -> pulumi.Output[list[str]]:
        """Known once every task of this component ran (each node waits for the gate before it): a failed
        one leaves it unknown for good."""
        return pulumi.Output.all(*self._steps)
