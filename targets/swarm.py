"""The `swarm` target: the cluster as services of a Docker Swarm (the `staging` stack)."""

from __future__ import annotations

import pulumi

from components.shared.credentials import StackCredentials
from components.swarm.stack import SwarmStack, swarm_tasks
from escluster.engines import parse_engine
from escluster.plan import ClusterPlan
from escluster.swarm import Swarm
from targets import StackOutputs
from targets.docker import container_certificates, url_host


def deploy(plan: ClusterPlan, swarm: Swarm, credentials: StackCredentials) -> StackOutputs:
    tasks = swarm_tasks(plan, swarm)
    certificates = container_certificates(plan, tasks)
    stack = SwarmStack(
        f"{plan.cluster_name}-swarm",
        plan,
        swarm=swarm,
        tasks=tasks,
        certificates=certificates,
        credentials=credentials,
    )
    # Kibana is on the ingress mesh: every swarm node answers, the manager included.
    manager_host = url_host(parse_engine(swarm.manager).address or "localhost")
    exposed = plan.http_exposed_node
    return StackOutputs(
        # HTTPS is published in host mode on each node's own swarm node.
        elasticsearch_url=f"https://{exposed.public_address}:{exposed.http_host_port}" if exposed else None,
        kibana_url=f"http://{manager_host}:{plan.kibana.host_ports[0]}",
        ca_certificate=certificates.ca_cert_pem,
        certificate_expiry=certificates.expiry,
        elastic_password=credentials.elastic_password,
        settled=pulumi.Output.all(stack.setup.cluster_uuid, stack.rolling.finished, stack.kibana_service.id),
        still_listed=stack.rolling.still_listed,
    )
