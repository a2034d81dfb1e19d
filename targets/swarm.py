"""The `swarm` target: the cluster as services of a Docker Swarm (the `staging` stack)."""

from __future__ import annotations

from components.certificates import ClusterCertificates
from components.credentials import StackCredentials
from components.swarm_stack import SwarmSecrets, SwarmStack
from escluster.plan import ClusterPlan
from escluster.swarm import Swarm
from targets import StackOutputs
from targets.docker import url_host


def deploy(plan: ClusterPlan, swarm: Swarm, credentials: StackCredentials) -> StackOutputs:
    certificates = ClusterCertificates(
        f"{plan.cluster_name}-certs", plan.cluster_name, plan.nodes, plan.cert_validity_hours
    )
    SwarmStack(
        f"{plan.cluster_name}-swarm",
        plan,
        swarm=swarm,
        certificates=certificates,
        secrets=SwarmSecrets(
            elastic_password=credentials.elastic_password,
            kibana_system_password=credentials.kibana_system_password,
            kibana_keystore=credentials.kibana_keystore,
        ),
    )
    manager_host = url_host(swarm.manager.split("://", 1)[1].split("@")[-1].split(":")[0])
    exposed = plan.http_exposed_node
    return StackOutputs(
        # HTTPS is published on the pinned node only (host mode); Kibana on every node (ingress).
        elasticsearch_url=f"https://{exposed.public_address}:{exposed.http_host_port}" if exposed else None,
        kibana_url=f"http://{manager_host}:{plan.kibana.host_ports[0]}",
        ca_certificate=certificates.ca_cert_pem,
        elastic_password=credentials.elastic_password,
    )
