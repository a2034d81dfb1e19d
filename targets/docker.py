"""The `docker` target: a cluster on one Docker engine (the `dev` stack)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.certificates import ClusterCertificates
from components.credentials import StackCredentials
from components.elasticsearch_node import ElasticsearchNode
from components.kibana import KibanaPair
from components.setup_job import CertSetupJob
from escluster.plan import ClusterPlan
from escluster.scripts import KIBANA_KEYSTORE_ENTRIES


@dataclass(frozen=True)
class StackOutputs:
    elasticsearch_url: str | None
    kibana_url: str
    ca_certificate: pulumi.Output[str]
    elastic_password: pulumi.Output[str]


def url_host(bind_address: str) -> str:
    address = ipaddress.ip_address(bind_address)
    if address.is_unspecified:
        return "localhost"
    return f"[{address}]" if address.version == 6 else str(address)


def deploy(plan: ClusterPlan, credentials: StackCredentials) -> StackOutputs:
    network = docker.Network(
        f"{plan.cluster_name}-net",
        name=f"{plan.cluster_name}-net",
        driver="bridge",
        opts=pulumi.ResourceOptions(delete_before_replace=True),
    )
    certificates = ClusterCertificates(
        f"{plan.cluster_name}-certs", plan.cluster_name, plan.nodes, plan.cert_validity_hours
    )
    # No node waits for another: they start together and find each other through discovery.
    nodes = [
        ElasticsearchNode(
            node,
            version=plan.version,
            network_name=network.name,
            certificate=certificates.node_certificates[node.name],
            ca_cert_pem=certificates.ca_cert_pem,
            elastic_password=credentials.elastic_password,
            memory_lock=plan.memory_lock,
            bind_address=plan.bind_address,
        )
        for node in plan.nodes
    ]
    setup = CertSetupJob(
        f"{plan.cluster_name}-setup",
        version=plan.version,
        network_name=network.name,
        es_urls=[node.https_url for node in plan.nodes],
        ca_cert_pem=certificates.ca_cert_pem,
        elastic_password=credentials.elastic_password,
        kibana_system_password=credentials.kibana_system_password,
        wait_for=[node.container for node in nodes],
    )
    keys = credentials.kibana_encryption_keys
    KibanaPair(
        f"{plan.cluster_name}-kibana",
        plan.kibana,
        network_name=network.name,
        ca_cert_pem=certificates.ca_cert_pem,
        keystore=dict(
            zip(
                KIBANA_KEYSTORE_ENTRIES,
                (credentials.kibana_system_password, keys["security"], keys["saved-objects"], keys["reporting"]),
                strict=True,
            )
        ),
        bind_address=plan.bind_address,
        setup_succeeded=setup.succeeded,
    )
    host = url_host(plan.bind_address)
    exposed = plan.http_exposed_node
    return StackOutputs(
        elasticsearch_url=f"https://{host}:{exposed.http_host_port}" if exposed else None,
        kibana_url=f"http://{host}:{plan.kibana.host_ports[0]}",
        ca_certificate=certificates.ca_cert_pem,
        elastic_password=credentials.elastic_password,
    )
