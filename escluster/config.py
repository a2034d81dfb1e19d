"""The stack config (`Pulumi.<stack>.yaml`) as pydantic models, validated before any resource exists.

Each top-level field of `StackConfig` is one Pulumi config key in the project's namespace
(`elastic-stack:cluster`, …). Every bad value fails with the key path and the reason. The sections are in
escluster.sections; what spans sections (targets, hosts, ports) is checked here.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from escluster import hosts
from escluster import swarm as swarm_placement
from escluster.fields import Strict
from escluster.hosts import DockerHost, NodeSlot
from escluster.kubernetes import Kubernetes
from escluster.sections import Cluster, Exposure, Kibana, Security, Target, version_tuple
from escluster.swarm import Swarm, SwarmPlacement


class StackConfig(Strict):
    target: Target = Field(Target.docker, description="Where the stack runs: docker, swarm or kubernetes.")
    cluster: Cluster
    security: Security = Field(default_factory=Security)
    kibana: Kibana = Field(default_factory=Kibana)
    exposure: Exposure = Field(default_factory=Exposure)
    docker_hosts: list[DockerHost] = Field(
        default_factory=list, description="Docker hosts of a cluster across servers; empty: the local engine."
    )
    swarm: Swarm | None = Field(None, description="The swarm (target `swarm`).")
    kubernetes: Kubernetes | None = Field(None, description="Namespace, storage, MetalLB (target `kubernetes`).")

    @property
    def kibana_version(self) -> str:
        return self.kibana.version or self.cluster.version

    @property
    def memory_lock(self) -> bool:
        if self.cluster.memory_lock is not None:
            return self.cluster.memory_lock
        return self.target is Target.docker

    def swarm_placements(self) -> dict[str, SwarmPlacement]:
        """Each ES node's swarm node and placement constraints (target `swarm`)."""
        if self.swarm is None:
            return {}
        members = [
            (f"{self.cluster.name}-{group.name}-{index}", group_index, index)
            for group_index, group in enumerate(self.cluster.node_groups)
            for index in range(group.count)
        ]
        return swarm_placement.resolve(members, [g.placement for g in self.cluster.node_groups], self.swarm)

    def warnings(self) -> list[str]:
        """Things that work but deserve a word before `up`."""
        return swarm_placement.warnings(self.swarm) if self.swarm else []

    @property
    def across_hosts(self) -> bool:
        return bool(self.docker_hosts)

    @property
    def kibana_host(self) -> DockerHost | None:
        return hosts.kibana_host(self.docker_hosts, self.kibana)

    def node_slots(self) -> list[NodeSlot]:
        return hosts.node_slots(self.cluster, self.docker_hosts, self.exposure, self.swarm_placements())

    def published_host_ports(self) -> list[tuple[str, str | None, int]]:
        return hosts.published_host_ports(
            self.node_slots(),
            across_hosts=self.across_hosts,
            kibana=self.kibana,
            kibana_host=self.kibana_host,
            swarm=self.swarm,
        )

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
            hosts.check_docker_hosts(self.docker_hosts, self.cluster, self.kibana, self.exposure)
            if self.swarm is not None:
                raise ValueError("swarm: only the swarm target uses it; set target: swarm or remove it")
        if self.target is Target.kubernetes:
            self._check_kubernetes()
        elif self.kubernetes is not None:
            raise ValueError("kubernetes: only the kubernetes target uses it; set target: kubernetes or remove it")
        if self.target is Target.swarm:
            if self.swarm is None:
                raise ValueError("swarm: the swarm target needs the swarm section (manager and nodes)")
            if self.docker_hosts:
                raise ValueError("docker_hosts: the swarm target deploys through swarm.manager; remove docker_hosts")
            for index, group in enumerate(self.cluster.node_groups):
                if group.transport_port is not None:
                    raise ValueError(
                        f"cluster.node_groups[{index}].transport_port: on a swarm, transport stays on the overlay "
                        "network and is not published"
                    )
        owners: dict[tuple[str | None, int], str] = {}
        for key, host, port in self.published_host_ports():
            where = f" on {host}" if host else ""
            if (host, port) in owners:
                raise ValueError(f"{key}: host port {port}{where} is already published by {owners[host, port]}")
            owners[host, port] = key
        return self

    def _check_kubernetes(self) -> None:
        if self.docker_hosts or self.swarm:
            raise ValueError("target: the kubernetes target uses neither docker_hosts nor swarm; remove them")
        if self.cluster.memory_lock:
            raise ValueError("cluster.memory_lock: pods cannot raise the memlock ulimit; leave it off")
        for index, group in enumerate(self.cluster.node_groups):
            if group.placement or group.http_port or group.transport_port:
                raise ValueError(
                    f"cluster.node_groups[{index}]: placement and ports are for docker and swarm; "
                    "pods are spread by anti-affinity"
                )

    @property
    def k8s(self) -> Kubernetes:
        return self.kubernetes or Kubernetes()
