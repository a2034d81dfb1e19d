"""MetalLBPool: MetalLB address pools and their L2 announcement, the bare-metal LoadBalancer.

Uses the CRDs (metallb.io/v1beta1) in MetalLB's namespace, not the ConfigMap MetalLB dropped in v0.13.
Optionally installs MetalLB from its Helm chart first, into a namespace labelled `privileged` for Pod
Security Admission (its speaker uses the host network and NET_RAW, which `baseline` forbids; MetalLB's
install guide asks for the labels, and the chart does not create the namespace). Pools go to MetalLB's
validating webhook, which answers only some time after the controller reports ready (metallb/metallb#1610,
#1612: a ping readiness check, the webhook starts after its certificate rotation): a wait step retries a
server-side dry run of the first pool until the webhook accepts it. `strict_arp` patches kube-proxy (IPVS
mode), as MetalLB's L2 mode asks, on the provider's cluster (escluster.kubernetes.ClusterAccess).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components import component_type
from components.kubernetes.objects import manifest, pod_security_labels
from escluster.kubernetes import ClusterAccess, MetalLB, Pool

METALLB_API = "metallb.io/v1beta1"
METALLB_CHART_REPO = "https://metallb.github.io/metallb"
RELEASE_NAME = "metallb"
WEBHOOK_WAIT_SECONDS = 300
BASH = ["/bin/bash", "-o", "pipefail", "-c"]


def strict_arp_script(access: ClusterAccess) -> str:
    """MetalLB's documented recipe (flip strictARP in kube-proxy's config and apply it back), on the
    stack's cluster, failing if any step of the pipe fails."""
    k = access.kubectl()
    return (
        f"{k} get configmap kube-proxy -n kube-system -o yaml"
        " | sed -e 's/strictARP: false/strictARP: true/'"
        f" | {k} apply -f - -n kube-system"
    )


def pool_manifest(pool: Pool, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": METALLB_API,
        "kind": "IPAddressPool",
        "metadata": {"name": pool.name, "namespace": namespace},
        "spec": {"addresses": list(pool.addresses), "autoAssign": pool.auto_assign},
    }


def webhook_wait_script(access: ClusterAccess, metallb: MetalLB) -> str:
    """Wait for the controller's rollout, then until the webhook accepts a dry run of the first pool."""
    k = access.kubectl()
    namespace = shlex.quote(metallb.namespace)
    pool = shlex.quote(json.dumps(pool_manifest(metallb.pools[0], metallb.namespace)))
    return f"""{k} -n {namespace} rollout status deployment/{RELEASE_NAME}-controller --timeout={WEBHOOK_WAIT_SECONDS}s
deadline=$((SECONDS + {WEBHOOK_WAIT_SECONDS}))
until answer=$(printf '%s' {pool} | {k} apply --dry-run=server -f - 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "MetalLB refused a dry run of pool {metallb.pools[0].name} for {WEBHOOK_WAIT_SECONDS} s; last answer:" >&2
    echo "$answer" >&2
    echo "See {k} -n {namespace} get pods" >&2
    exit 1
  fi
  sleep 5
done
"""


class MetalLBPool(pulumi.ComponentResource):
    pools: list[k8s.apiextensions.CustomResource]
    advertisement: k8s.apiextensions.CustomResource

    def __init__(
        self, name: str, metallb: MetalLB, *, access: ClusterAccess, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(component_type("MetalLBPool"), name, None, opts)
        prerequisites: list[pulumi.Resource] = []
        if metallb.strict_arp:
            prerequisites.append(
                command.local.Command(
                    f"{name}-kube-proxy-strict-arp",
                    create=strict_arp_script(access),
                    interpreter=BASH,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        if metallb.install:
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=manifest({"name": metallb.namespace, "labels": pod_security_labels("privileged")}),
                opts=pulumi.ResourceOptions(parent=self),
            )
            release = k8s.helm.v3.Release(
                f"{name}-metallb",
                name=RELEASE_NAME,
                chart="metallb",
                version=metallb.chart_version,
                namespace=metallb.namespace,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=METALLB_CHART_REPO),
                # Helm waits for the release's workloads; the webhook wait below does the rest.
                atomic=True,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
            )
            prerequisites.append(
                command.local.Command(
                    f"{name}-webhook-ready",
                    create=webhook_wait_script(access, metallb),
                    interpreter=BASH,
                    triggers=[release.version],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
                )
            )
        after = pulumi.ResourceOptions(parent=self, depends_on=prerequisites)
        self.pools = []
        for pool in metallb.pools:
            body = pool_manifest(pool, metallb.namespace)
            self.pools.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-{pool.name}",
                    api_version=METALLB_API,
                    kind="IPAddressPool",
                    metadata=manifest(body["metadata"]),
                    spec=manifest(body["spec"]),
                    opts=after,
                )
            )
        # One advertisement announces every pool (L2 mode), so no pool is left silent.
        self.advertisement = k8s.apiextensions.CustomResource(
            f"{name}-l2",
            api_version=METALLB_API,
            kind="L2Advertisement",
            metadata=manifest({"name": f"{name}-l2", "namespace": metallb.namespace}),
            spec=manifest({"ipAddressPools": [pool.name for pool in metallb.pools]}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*prerequisites, *self.pools]),
        )
        self.register_outputs({"pools": [pool.name for pool in metallb.pools]})
