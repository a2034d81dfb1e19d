"""MetalLBPool: MetalLB address pools and their L2 announcement, the bare-metal LoadBalancer.

Uses the CRDs (metallb.io/v1beta1) in MetalLB's namespace, not the ConfigMap MetalLB dropped in
v0.13. Optionally installs MetalLB from its Helm chart first (its webhook must be up before pools),
and patches kube-proxy for strictARP (IPVS mode), as MetalLB's L2 mode asks.
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components import component_type
from components.k8s_objects import manifest
from escluster.kubernetes import MetalLB

METALLB_API = "metallb.io/v1beta1"
METALLB_CHART_REPO = "https://metallb.github.io/metallb"
# MetalLB's documented recipe: flip strictARP in kube-proxy's config and apply it back.
STRICT_ARP_PATCH = (
    "kubectl get configmap kube-proxy -n kube-system -o yaml"
    " | sed -e 's/strictARP: false/strictARP: true/'"
    " | kubectl apply -f - -n kube-system"
)


class MetalLBPool(pulumi.ComponentResource):
    pools: list[k8s.apiextensions.CustomResource]
    advertisement: k8s.apiextensions.CustomResource

    def __init__(self, name: str, metallb: MetalLB, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(component_type("MetalLBPool"), name, None, opts)
        prerequisites: list[pulumi.Resource] = []
        if metallb.strict_arp:
            prerequisites.append(
                command.local.Command(
                    f"{name}-kube-proxy-strict-arp", create=STRICT_ARP_PATCH, opts=pulumi.ResourceOptions(parent=self)
                )
            )
        if metallb.install:
            prerequisites.append(
                k8s.helm.v3.Release(
                    f"{name}-metallb",
                    name="metallb",
                    chart="metallb",
                    version=metallb.chart_version,
                    namespace=metallb.namespace,
                    create_namespace=True,
                    repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=METALLB_CHART_REPO),
                    # Pools are validated by MetalLB's webhook: wait until the release is ready.
                    atomic=True,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        after = pulumi.ResourceOptions(parent=self, depends_on=prerequisites)
        self.pools = [
            k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}",
                api_version=METALLB_API,
                kind="IPAddressPool",
                metadata=manifest({"name": pool.name, "namespace": metallb.namespace}),
                spec=manifest({"addresses": list(pool.addresses), "autoAssign": pool.auto_assign}),
                opts=after,
            )
            for pool in metallb.pools
        ]
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
