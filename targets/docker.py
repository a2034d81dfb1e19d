"""The `docker` target: a cluster on the local engine (`dev`) or across several Docker hosts (`lab`)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace

import pulumi
import pulumi_docker as docker

from components.docker.cluster_tasks import ClusterTasks
from components.docker.common import remote_image
from components.docker.elasticsearch_node import ElasticsearchNode
from components.docker.kibana import KibanaPair
from components.docker.rolling import RollingUpdates, container_ca_checks, task_stdin
from components.docker.setup_job import SetupJob
from components.shared.certificates import ClusterCertificates
from components.shared.credentials import StackCredentials
from components.shared.digest import spec_digest
from escluster.engines import LOCAL_ENGINE, Engine, parse_engine
from escluster.plan import ES_IMAGE, ClusterPlan, HostPlan, NodePlan
from targets import StackOutputs

# The key of the local engine's resources when the stack has no docker_hosts.
LOCAL = "local"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class EngineResources:
    """Where resources of one Docker engine go: its provider (None: the default) and its network."""

    options: pulumi.ResourceOptions
    network: docker.Network
    # Every ES node on the engine runs from one pulled image.
    es_image: docker.RemoteImage


def url_host(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.is_unspecified:
        return "localhost"
    return f"[{ip}]" if ip.version == 6 else str(ip)


def local_engine() -> Engine:
    """The engine the default pulumi-docker provider uses (`docker:host`, else DOCKER_HOST, else the local
    socket), named explicitly for the `docker` CLI, which would otherwise follow its own `docker context`."""
    host = pulumi.Config("docker").get("host") or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    try:
        return parse_engine(host)
    except ValueError:
        return LOCAL_ENGINE


def engine_for(plan: ClusterPlan, host: HostPlan | None) -> EngineResources:
    options = pulumi.ResourceOptions()
    suffix = ""
    if host is not None:
        provider = docker.Provider(
            f"docker-{host.name}", host=host.engine, cert_path=host.cert_path, ssh_opts=list(host.ssh_opts) or None
        )
        options = pulumi.ResourceOptions(providers=[provider])
        suffix = f"-{host.name}"
    network = docker.Network(
        f"{plan.cluster_name}-net{suffix}",
        name=plan.network_name,
        driver="bridge",
        opts=pulumi.ResourceOptions.merge(options, pulumi.ResourceOptions(delete_before_replace=True)),
    )
    es_image = remote_image(f"{plan.cluster_name}-es-image{suffix}", ES_IMAGE, plan.version, options)
    return EngineResources(options, network, es_image)


def container_certificates(plan: ClusterPlan, tasks: ClusterTasks) -> ClusterCertificates:
    """The CA and node certificates of a Docker or Swarm cluster; a CA rotation's last step asks the nodes
    that run (through the cluster tasks) which CA signed their certificates."""
    return ClusterCertificates(
        f"{plan.cluster_name}-certs",
        plan.cluster_name,
        plan.nodes,
        plan.cert_validity_hours,
        ca=plan.lifecycle.ca,
        checks=container_ca_checks(replace(tasks, es_urls=plan.running_urls), plan.lifecycle.ca.issuing),
    )


def deploy(plan: ClusterPlan, credentials: StackCredentials) -> StackOutputs:
    engines = {host.name: engine_for(plan, host) for host in plan.hosts} or {LOCAL: engine_for(plan, None)}

    def engine_of(host: HostPlan | None) -> EngineResources:
        return engines[host.name if host else LOCAL]

    kibana_engine = engine_of(plan.kibana.host)
    kibana_host = plan.kibana.host
    # Scripts run against the cluster from Kibana's engine, on its network, reaching every node.
    tasks = ClusterTasks(
        engine=parse_engine(kibana_host.engine) if kibana_host else local_engine(),
        ssh_opts=kibana_host.ssh_opts if kibana_host else (),
        cert_path=kibana_host.cert_path if kibana_host else pulumi.Config("docker").get("certPath"),
        network=plan.network_name,
        image=f"{ES_IMAGE}:{plan.version}",
        es_urls=plan.es_urls,
    )
    certificates = container_certificates(plan, tasks)
    rolling = RollingUpdates(
        f"{plan.cluster_name}-rolling",
        nodes=plan.nodes,
        lifecycle=plan.lifecycle,
        tasks=replace(tasks, es_urls=plan.master_urls),
        admin_stdin=task_stdin(credentials.admin_password, certificates.ca_cert_pem),
        version=plan.version,
    )
    specs = {
        node.name: spec_digest(
            node.workload_spec,
            str(plan.memory_lock),
            engine_of(node.host).es_image.image_id,
            certificates.node_certificates[node.name].cert_pem,
            certificates.ca_cert_pem,
            credentials.file_realm_users,
        )
        for node in plan.nodes
    }

    def create(node: NodePlan, after: list[pulumi.Resource]) -> ElasticsearchNode:
        return ElasticsearchNode(
            node,
            image_id=engine_of(node.host).es_image.image_id,
            network_name=engine_of(node.host).network.name,
            certificate=certificates.node_certificates[node.name],
            ca_cert_pem=certificates.ca_cert_pem,
            file_realm_users=credentials.file_realm_users,
            memory_lock=plan.memory_lock,
            after=after,
            opts=engine_of(node.host).options,
        )

    rolling.create_nodes(specs, create, restarted=lambda created: created.container.id)
    # The setup step, Kibana and a new cluster's nodes start together: each retries until what it needs is there.
    setup = SetupJob(
        f"{plan.cluster_name}-setup",
        tasks=tasks,
        logs_hint=f"docker logs {plan.nodes[0].name}, on each node's engine",
        admin_password=credentials.admin_password,
        elastic_password=credentials.elastic_password,
        kibana_system_password=credentials.kibana_system_password,
        ca_cert_pem=certificates.ca_cert_pem,
        depends_on=[kibana_engine.network],
    )
    kibana = KibanaPair(
        f"{plan.cluster_name}-kibana",
        plan.kibana,
        network_name=kibana_engine.network.name,
        ca_cert_pem=certificates.ca_cert_pem,
        keystore=credentials.kibana_keystore,
        after=rolling.last,
        opts=kibana_engine.options,
    )
    exposed = plan.http_exposed_node
    return StackOutputs(
        elasticsearch_url=f"https://{url_host(exposed.public_address)}:{exposed.http_host_port}" if exposed else None,
        kibana_url=f"http://{url_host(plan.kibana.public_address)}:{plan.kibana.host_ports[0]}",
        ca_certificate=certificates.ca_cert_pem,
        certificate_expiry=certificates.expiry,
        elastic_password=credentials.elastic_password,
        settled=pulumi.Output.all(setup.cluster_uuid, rolling.finished, *(c.id for c in kibana.containers)),
        still_listed=rolling.still_listed,
    )
