"""The `swarm` target: the cluster as services of a Docker Swarm (the `staging` stack)."""

from __future__ import annotations

from components.certificates import ClusterCertificates
from components.credentials import StackCredentials
from components.swarm_stack import SwarmStack
from escluster.engines import parse_engine
from escluster.plan import ClusterPlan
from escluster.swarm import Swarm
from targets import StackOutputs
from targets.docker import url_host


def deploy(plan: ClusterPlan, swarm: Swarm, credentials: StackCredentials) -> StackOutputs:
    certificates = ClusterCertificates(
        f"{plan.cluster_name}-certs", plan.cluster_name, plan.nodes, plan.cert_validity_hours
    )
    stack = SwarmStack(
        f"{plan.cluster_name}-swarm", plan, swarm=swarm, certificates=certificates, credentials=credentials
    )
    # Kibana is on the ingress mesh: every swarm node answers, the manager included.
    manager_host = url_host(parse_engine(swarm.manager).address or "localhost")
    exposed = plan.http_exposed_node
    return StackOutputs(
        # HTTPS is published in host mode on each node's own swarm node.
        elasticsearch_url=f"https://{exposed.public_address}:{exposed.http_host_port}" if exposed else None,
        kibana_url=f"http://{manager_host}:{plan.kibana.host_ports[0]}",
        ca_certificate=certificates.ca_cert_pem,
        elastic_password=credentials.elastic_password,
        setup_done=stack.setup.cluster_uuid,
    )
