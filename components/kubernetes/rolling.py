"""KubernetesRoll: on a formed cluster, one Elasticsearch pod restarts at a time across every StatefulSet.

The StatefulSets use `updateStrategy: OnDelete` (as ECK's do): a new pod template changes no pod by
itself. On a formed cluster pulumi-kubernetes does not wait for them (`pulumi.com/skipAwait`): its await
would wait for every pod to be ready (provider/pkg/await statefulset.go), so a pod a change broke would
block the `up` that fixes it. The roll task, run after them from the machine running `pulumi up` with
`kubectl` (the provider's cluster), waits for their controller, restarts the pods on an old revision in
Elastic's order, gating each, and then waits for every pod to be ready and in the cluster
(escluster/rolling.py). First an exclusions task keeps the allocation and voting exclusions to the nodes
leaving; before nodes are removed (fewer replicas, or a node group gone), a drain task moves their shards
off and takes masters out of the voting configuration, and the StatefulSets wait for it. A new cluster
gets none of this: its pods start together, and pulumi-kubernetes waits for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components import component_type
from components.shared.certificates import CaCheck, CaChecks
from components.shared.digest import spec_digest
from escluster.ca_checks import kubernetes_issuer_check_script, kubernetes_trust_check_script
from escluster.changes import is_master, rollout_order
from escluster.k8s_plan import CERTS_DIR, KubernetesPlan
from escluster.rolling import (
    LIBRARY,
    drain_script,
    exclusions_script,
    kubectl_preamble,
    kubernetes_roll_script,
    lingering_nodes,
)
from escluster.scripts import curl_config_user
from escluster.security import ADMIN_USER

BASH = ["/bin/bash", "-c"]


class KubernetesRoll(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        plan: KubernetesPlan,
        *,
        admin_password: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(component_type("KubernetesRoll"), name, None, opts)
        self._plan, self._name = plan, name
        selector = ",".join(f"{key}={value}" for key, value in plan.cluster_labels.items())
        self._preamble = (
            kubectl_preamble(plan.access.kubectl_argv("--namespace", plan.namespace), selector, f"{CERTS_DIR}/ca.crt")
            + LIBRARY
        )
        self._stdin: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.from_input(admin_password).apply(lambda pw: curl_config_user(ADMIN_USER, pw))
        )
        self._last: pulumi.Resource | None = None
        # What every task printed, for `finished`.
        self._steps: list[pulumi.Output[str]] = []
        lifecycle = plan.lifecycle
        # Removed nodes the cluster still lists (Pulumi could not delete them), for the next state.
        self.still_listed: pulumi.Output[tuple[str, ...]] = pulumi.Output.from_input(())
        if lifecycle.formed:
            exclusions = self._task(f"{name}-exclusions", exclusions_script(lifecycle.removed, lifecycle.lingering))
            self.still_listed = exclusions.stdout.apply(lingering_nodes)
        if lifecycle.formed and lifecycle.removed:
            self._task(f"{name}-drain", drain_script(lifecycle.removed))
        self.register_outputs({})

    @property
    def before_nodes(self) -> list[pulumi.Resource]:
        """What the StatefulSets wait for: the nodes this run removes are drained first."""
        return [self._last] if self._last else []

    def _task(
        self, name: str, script: str, environment: dict[str, pulumi.Input[str]] | None = None
    ) -> command.local.Command:
        task = command.local.Command(
            name,
            create=self._preamble + script,
            interpreter=BASH,
            stdin=self._stdin,
            environment=environment,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._last] if self._last else []),
        )
        self._last = task
        self._steps.append(task.stdout)
        return task

    def ca_checks(self, generation: int) -> CaChecks:
        """A pod's certificate and trust bundle are files of a Secret, which reach the running pods some time
        after the `up` (the kubelet's sync), without a restart: step 2 of a CA rotation first checks that
        every pod trusts the new CA, step 3 that every pod presents a certificate from it."""

        def check(script: Callable[[str], str]) -> CaCheck:
            def run(name: str, ca_pem: pulumi.Output[str], parent: pulumi.Resource) -> command.local.Command:
                return command.local.Command(
                    name,
                    create=ca_pem.apply(lambda pem: self._preamble + script(pem)),
                    interpreter=BASH,
                    stdin=self._stdin,
                    opts=pulumi.ResourceOptions(parent=parent),
                )

            return run

        return CaChecks(
            issuer=check(lambda pem: kubernetes_issuer_check_script(pem, generation)),
            trust=check(lambda pem: kubernetes_trust_check_script(pem, generation, f"{CERTS_DIR}/ca.crt")),
        )

    def roll(
        self, statefulsets: Sequence[k8s.apps.v1.StatefulSet], templates: Sequence[pulumi.Input[str]]
    ) -> command.local.Command | None:
        """After the StatefulSets: restart the pods on an old revision, one at a time (a formed cluster).
        `templates`: a digest of each StatefulSet's pod template; a new one runs the roll again."""
        plan = self._plan
        if not plan.lifecycle.formed or not statefulsets:
            return None
        roles = {group.statefulset: group.roles for group in plan.groups if group.replicas > 0}
        roll = command.local.Command(
            f"{self._name}-roll",
            create=self._preamble
            + kubernetes_roll_script(
                rollout_order(roles),
                [sts for sts, group_roles in roles.items() if is_master(group_roles)],
                plan.version,
                plan.lifecycle.upgrade,
            ),
            interpreter=BASH,
            stdin=self._stdin,
            # Run again for a new template, and for pods added (the roll waits for them and gates them).
            environment={
                "ES_POD_TEMPLATES": spec_digest(*templates),
                "ES_PODS": " ".join(pod for group in plan.groups for pod in group.pods),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(statefulsets)),
        )
        self._steps.append(roll.stdout)
        return roll

    @property
    def finished(self) -> pulumi.Output[list[str]]:
        """Known once every task of this component ran: a failed one leaves it unknown for good."""
        return pulumi.Output.all(*self._steps)
