"""SwarmStack: the cluster as Docker Swarm services, one per ES node, pinned by node labels.

Through the manager's engine it labels the swarm nodes, creates an attachable overlay network, runs
one service per ES node (one replica, dnsrr, its own named volume) and Kibana; the setup step joins the
overlay as a throwaway container (components/docker/setup_job.py). Settings and certificates are swarm
configs; keys, the program's users and Kibana's keystore values are swarm secrets, never env.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pulumi
import pulumi_docker as docker

from components import component_type
from components.docker.cluster_tasks import ClusterTasks
from components.docker.rolling import RollingUpdates, task_stdin
from components.docker.setup_job import SetupJob
from components.shared.certificates import ClusterCertificates
from components.shared.credentials import StackCredentials
from components.shared.digest import spec_digest
from components.swarm.objects import config_file, node_label, secret_file
from escluster.engines import parse_engine
from escluster.plan import (
    ES_CONFIG_DIR,
    ES_DATA_DIR,
    ES_IMAGE,
    HTTP_PORT,
    KIBANA_CONFIG_DIR,
    KIBANA_IMAGE,
    KIBANA_PORT,
    ClusterPlan,
    NodePlan,
    render_yaml,
)
from escluster.scripts import (
    KIBANA_SECRET_DIR,
    KIBANA_STARTUP_SECONDS,
    es_healthcheck,
    keystore_value,
    kibana_healthcheck,
    kibana_start_script,
)
from escluster.security import roles_file, users_roles_file
from escluster.swarm import Swarm

CONVERGE_TIMEOUT_SECONDS = 600
STOP_GRACE_PERIOD = "120s"
# Short, fixed stems for Kibana's keystore secrets (the entry names are too long for swarm names).
KIBANA_SECRET_STEMS = {
    "elasticsearch.password": "kibana-es-password",
    "xpack.security.encryptionKey": "kibana-security-key",
    "xpack.encryptedSavedObjects.encryptionKey": "kibana-saved-objects-key",
    "xpack.reporting.encryptionKey": "kibana-reporting-key",
}


def _healthcheck(test: str) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
    # A task with a healthcheck counts as running only once healthy, so converge waits for health.
    return docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
        tests=["CMD-SHELL", test], interval="10s", timeout="10s", start_period="30s", retries=60
    )


def swarm_tasks(plan: ClusterPlan, swarm: Swarm) -> ClusterTasks:
    """Scripts run against the cluster on the manager, joined to the overlay."""
    return ClusterTasks(
        engine=parse_engine(swarm.manager),
        ssh_opts=tuple(swarm.ssh_opts),
        cert_path=swarm.cert_path,
        network=plan.network_name,
        image=f"{ES_IMAGE}:{plan.version}",
        es_urls=plan.es_urls,
    )


class SwarmStack(pulumi.ComponentResource):
    es_services: dict[str, docker.Service]
    kibana_service: docker.Service
    setup: SetupJob
    rolling: RollingUpdates

    def __init__(
        self,
        name: str,
        plan: ClusterPlan,
        *,
        swarm: Swarm,
        tasks: ClusterTasks,
        certificates: ClusterCertificates,
        credentials: StackCredentials,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`tasks`: how scripts reach the cluster (`swarm_tasks`)."""
        super().__init__(component_type("SwarmStack"), name, None, opts)
        manager = docker.Provider(
            f"{name}-manager",
            host=swarm.manager,
            cert_path=swarm.cert_path,
            ssh_opts=swarm.ssh_opts or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._child = pulumi.ResourceOptions(parent=self, provider=manager)
        labels = self._label_nodes(swarm)
        self.network = docker.Network(
            f"{plan.cluster_name}-overlay",
            name=plan.network_name,
            driver="overlay",
            attachable=True,
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(delete_before_replace=True)),
        )
        cluster = plan.cluster_name
        # Files every node reads alike: one config or secret each, shared by the services.
        self._ca = config_file(f"{cluster}-ca", plan.nodes[0].tls.ca, certificates.ca_cert_pem, self._child)
        self._shared_es_configs = [
            config_file(f"{cluster}-users-roles", f"{ES_CONFIG_DIR}/users_roles", users_roles_file(), self._child),
            config_file(f"{cluster}-roles", f"{ES_CONFIG_DIR}/roles.yml", roles_file(), self._child),
        ]
        self._users = secret_file(
            f"{cluster}-users", f"{ES_CONFIG_DIR}/users", credentials.file_realm_users, self._child
        )
        self.rolling = rolling = RollingUpdates(
            f"{cluster}-rolling",
            nodes=plan.nodes,
            lifecycle=plan.lifecycle,
            tasks=replace(tasks, es_urls=plan.master_urls),
            admin_stdin=task_stdin(credentials.admin_password, certificates.ca_cert_pem),
            version=plan.version,
            opts=pulumi.ResourceOptions(parent=self),
        )
        specs = {
            node.name: spec_digest(
                node.workload_spec,
                f"{ES_IMAGE}:{plan.version}",
                certificates.node_certificates[node.name].cert_pem,
                certificates.ca_cert_pem,
                credentials.file_realm_users,
            )
            for node in plan.nodes
        }

        def create(node: NodePlan, after: list[pulumi.Resource]) -> docker.Service:
            return self._es_service(plan, node, certificates, [*labels.get(node.swarm_node or "", []), *after])

        self.es_services = rolling.create_nodes(specs, create)
        # The setup step, Kibana and a new cluster's nodes start together: each retries until what it needs is there.
        self.setup = SetupJob(
            f"{cluster}-setup",
            tasks=tasks,
            logs_hint=f"docker service logs {plan.nodes[0].name}, through the manager",
            admin_password=credentials.admin_password,
            elastic_password=credentials.elastic_password,
            kibana_system_password=credentials.kibana_system_password,
            ca_cert_pem=certificates.ca_cert_pem,
            depends_on=[self.network],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.kibana_service = self._kibana_service(plan, certificates, credentials)
        self.register_outputs({"network": self.network.name})

    def _label_nodes(self, swarm: Swarm) -> dict[str, list[pulumi.Resource]]:
        manager = parse_engine(swarm.manager)
        return {
            target.node: [
                node_label(
                    f"label-{target.node}-{key}",
                    manager=manager,
                    ssh_opts=tuple(swarm.ssh_opts),
                    cert_path=swarm.cert_path,
                    swarm_node=target.node,
                    key=key,
                    value=value,
                    parent=self,
                )
                for key, value in sorted(target.labels.items())
            ]
            for target in swarm.nodes
        }

    def _service(
        self,
        name: str,
        container: docker.ServiceTaskSpecContainerSpecArgs,
        *,
        replicas: int = 1,
        endpoint: docker.ServiceEndpointSpecArgs,
        constraints: Sequence[str] = (),
        memory_bytes: int | None = None,
        order: str = "stop-first",
        converge_seconds: int = CONVERGE_TIMEOUT_SECONDS,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> docker.Service:
        return docker.Service(
            name,
            name=name,
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=container,
                networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=self.network.id, aliases=[name])],
                placement=docker.ServiceTaskSpecPlacementArgs(constraints=list(constraints)) if constraints else None,
                resources=docker.ServiceTaskSpecResourcesArgs(
                    limits=docker.ServiceTaskSpecResourcesLimitsArgs(memory_bytes=memory_bytes)
                )
                if memory_bytes
                else None,
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="10s"),
            ),
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=replicas)),
            endpoint_spec=endpoint,
            update_config=docker.ServiceUpdateConfigArgs(parallelism=1, order=order, failure_action="pause"),
            converge_config=docker.ServiceConvergeConfigArgs(delay="10s", timeout=f"{converge_seconds}s"),
            opts=pulumi.ResourceOptions.merge(
                self._child, pulumi.ResourceOptions(depends_on=list(depends_on), delete_before_replace=True)
            ),
        )

    def _es_service(
        self,
        plan: ClusterPlan,
        node: NodePlan,
        certificates: ClusterCertificates,
        depends_on: Sequence[pulumi.Resource],
    ) -> docker.Service:
        cert = certificates.node_certificates[node.name]
        ports = []
        if node.http_host_port is not None:
            # dnsrr services cannot use the ingress mesh: publish on the pinned node itself.
            ports.append(
                docker.ServiceEndpointSpecPortArgs(
                    target_port=HTTP_PORT, published_port=node.http_host_port, publish_mode="host"
                )
            )
        container = docker.ServiceTaskSpecContainerSpecArgs(
            image=f"{ES_IMAGE}:{plan.version}",
            hostname=node.name,
            env={"ES_JAVA_OPTS": node.jvm_options},
            configs=[
                config_file(
                    f"{node.name}-settings",
                    f"{ES_CONFIG_DIR}/elasticsearch.yml",
                    render_yaml(node.settings),
                    self._child,
                ),
                self._ca,
                config_file(f"{node.name}-cert", node.tls.certificate, cert.cert_pem, self._child),
                *self._shared_es_configs,
            ],
            secrets=[secret_file(f"{node.name}-key", node.tls.key, cert.key_pem, self._child), self._users],
            # A named volume on the pinned node, created by the swarm and left alone when the service goes.
            mounts=[
                docker.ServiceTaskSpecContainerSpecMountArgs(
                    type="volume", source=f"{node.name}-data", target=ES_DATA_DIR
                )
            ],
            healthcheck=_healthcheck(es_healthcheck(node.tls.ca)),
            stop_grace_period=STOP_GRACE_PERIOD,
        )
        return self._service(
            node.name,
            container,
            endpoint=docker.ServiceEndpointSpecArgs(mode="dnsrr", ports=ports),
            constraints=node.placement_constraints,
            memory_bytes=node.memory_bytes,
            depends_on=depends_on,
        )

    def _kibana_service(
        self, plan: ClusterPlan, certificates: ClusterCertificates, credentials: StackCredentials
    ) -> docker.Service:
        name = f"{plan.cluster_name}-kibana"
        kibana = plan.kibana
        container = docker.ServiceTaskSpecContainerSpecArgs(
            image=f"{KIBANA_IMAGE}:{kibana.version}",
            args=["bash", "-c", kibana_start_script()],
            configs=[
                config_file(
                    f"{name}-settings", f"{KIBANA_CONFIG_DIR}/kibana.yml", render_yaml(kibana.settings), self._child
                ),
                config_file(f"{name}-ca", kibana.ca_file, certificates.ca_cert_pem, self._child),
            ],
            secrets=[
                secret_file(
                    f"{plan.cluster_name}-{KIBANA_SECRET_STEMS[entry]}",
                    f"{KIBANA_SECRET_DIR}/{entry}",
                    value.apply(keystore_value),
                    self._child,
                )
                for entry, value in sorted(credentials.kibana_keystore.items())
            ],
            healthcheck=_healthcheck(kibana_healthcheck()),
        )
        # Ingress: Kibana is not pinned, so the routing mesh answers on every swarm node's port.
        endpoint = docker.ServiceEndpointSpecArgs(
            mode="vip",
            ports=[
                docker.ServiceEndpointSpecPortArgs(
                    target_port=KIBANA_PORT, published_port=kibana.host_ports[0], publish_mode="ingress"
                )
            ],
        )
        return self._service(
            name,
            container,
            replicas=len(kibana.names),
            endpoint=endpoint,
            memory_bytes=kibana.memory_bytes,
            order="start-first",
            # Kibana converges once the setup step set its password: it waits longer than the step.
            converge_seconds=KIBANA_STARTUP_SECONDS,
            depends_on=self.rolling.last,
        )
