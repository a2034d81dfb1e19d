"""Docker hosts of a cluster across servers, and where each node runs and which host ports it takes.

Pure Python, used by the config's validation and by the plan.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from escluster.engines import EngineUrl
from escluster.fields import DNS_LABEL, DnsLabel, Strict
from escluster.sections import Cluster, Exposure, Kibana
from escluster.swarm import Swarm, SwarmPlacement

# Across hosts each node group's ports start this far apart on a host.
PORT_BLOCK = 10


def _host_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    if len(value) > 253 or not all(DNS_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(f"{value!r} is neither an IP address nor a DNS name") from None
    return value


HostAddress = Annotated[str, AfterValidator(_host_address)]


class DockerHost(Strict):
    name: DnsLabel = Field(description="Host name used by `placement` and `kibana.host`.")
    engine: EngineUrl = Field(description="Docker engine: `ssh://user@host`, `tcp://host:2376` or `unix://…`.")
    address: HostAddress = Field(description="Address other hosts and clients reach this host at.")
    cert_path: str | None = Field(
        None, description="Directory with `ca.pem`, `cert.pem`, `key.pem` for a `tcp://` engine (required there)."
    )
    ssh_opts: list[str] = Field(default_factory=list, description="Extra ssh options for an `ssh://` engine.")

    @model_validator(mode="after")
    def _check(self) -> DockerHost:
        if self.engine.startswith("tcp://") and not self.cert_path:
            raise ValueError("cert_path: a tcp:// engine needs TLS material (an open engine port is root on the host)")
        return self


@dataclass(frozen=True)
class NodeSlot:
    """A node's place: its name, group, Docker host (None: the local engine or a swarm), the swarm node it
    is pinned to, and its published host ports."""

    name: str
    group_index: int
    host: str | None
    http_port: int | None
    transport_port: int | None
    swarm_node: str | None = None


def kibana_host(docker_hosts: Sequence[DockerHost], kibana: Kibana) -> DockerHost | None:
    if not docker_hosts:
        return None
    wanted = kibana.host or docker_hosts[0].name
    return next(host for host in docker_hosts if host.name == wanted)


def node_slots(
    cluster: Cluster,
    docker_hosts: Sequence[DockerHost],
    exposure: Exposure,
    pinned: Mapping[str, SwarmPlacement],
) -> list[NodeSlot]:
    """Where each node runs and which host ports it publishes.

    Nodes go to their group's placement (or every host) in turn. Across hosts and on a swarm, each group
    has its own first port, and a group's nodes on one machine take the ports that follow, so adding a
    node or a group never moves an existing node to another port. On one engine only the first node
    publishes HTTPS; transport stays inside the Docker network (or the swarm's overlay).
    """
    hosts = [host.name for host in docker_hosts]
    http_base, transport_base = exposure.http_port, exposure.transport_port
    slots: list[NodeSlot] = []
    for group_index, group in enumerate(cluster.node_groups):
        # Placement names docker hosts only across hosts; on a swarm it holds label selectors.
        targets = (group.placement or hosts) if hosts else []
        http = group.http_port or (http_base + PORT_BLOCK * group_index if http_base else None)
        transport = group.transport_port or transport_base + PORT_BLOCK * group_index
        on_machine: dict[str, int] = {}
        for index in range(group.count):
            name = f"{cluster.name}-{group.name}-{index}"
            if pinned:
                machine = pinned[name].node
                nth = on_machine[machine] = on_machine.get(machine, -1) + 1
                slots.append(NodeSlot(name, group_index, None, http + nth if http else None, None, machine))
            elif not targets:
                slots.append(NodeSlot(name, group_index, None, http_base if not slots else None, None))
            else:
                host = targets[index % len(targets)]
                nth = on_machine[host] = on_machine.get(host, -1) + 1
                slots.append(NodeSlot(name, group_index, host, http + nth if http else None, transport + nth))
    return slots


def published_host_ports(
    slots: Sequence[NodeSlot],
    *,
    across_hosts: bool,
    kibana: Kibana,
    kibana_host: DockerHost | None,
    swarm: Swarm | None,
) -> list[tuple[str, str | None, int]]:
    """Every published (machine, port), with the config key that asks for it (machine None: the local
    engine). Kibana's swarm port is published by the ingress mesh on every swarm node."""
    ports: list[tuple[str, str | None, int]] = []
    for slot in slots:
        group_key = f"cluster.node_groups[{slot.group_index}]"
        if slot.http_port is not None:
            key = f"{group_key}.http_port" if across_hosts or slot.swarm_node else "exposure.http_port"
            ports.append((key, slot.host or slot.swarm_node, slot.http_port))
        if slot.transport_port is not None:
            ports.append((f"{group_key}.transport_port", slot.host, slot.transport_port))
    kibana_ports = [kibana.port + i for i in range(kibana.replicas)]
    if swarm is not None:
        machines = sorted({node.node for node in swarm.nodes})
        ports += [("kibana.port", machine, kibana.port) for machine in machines]
    else:
        machine = kibana_host.name if kibana_host else None
        ports += [("kibana.port", machine, port) for port in kibana_ports]
    return ports


def check_docker_hosts(
    docker_hosts: Sequence[DockerHost], cluster: Cluster, kibana: Kibana, exposure: Exposure
) -> None:
    names = [host.name for host in docker_hosts]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ValueError(f"docker_hosts[{index}].name: {name!r} is used by another host")
    for index, group in enumerate(cluster.node_groups):
        key = f"cluster.node_groups[{index}]"
        for place_index, place in enumerate(group.placement):
            if not names:
                raise ValueError(f"{key}.placement: nodes are placed on docker_hosts; define docker_hosts first")
            if place not in names:
                raise ValueError(f"{key}.placement[{place_index}]: {place!r} is not a docker host ({names})")
        if not names and (group.http_port or group.transport_port):
            raise ValueError(f"{key}: http_port and transport_port are for clusters across docker_hosts")
    if kibana.host is not None and kibana.host not in names:
        raise ValueError(f"kibana.host: {kibana.host!r} is not a docker host ({names})")
    if names and exposure.http_port is None:
        raise ValueError("exposure.http_port: across hosts, Kibana reaches the nodes on published HTTP ports")
