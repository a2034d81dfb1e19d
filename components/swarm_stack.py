"""SwarmStack: the cluster as Docker Swarm services, one per ES node, pinned by node labels.

Through the manager's engine it labels the swarm nodes, creates an attachable overlay network, runs
one service per ES node (one replica, dnsrr, its own named volume), the one-shot setup job and Kibana.
Settings and certificates are swarm configs; keys and passwords are swarm secrets, never env.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import pulumi
import pulumi_docker as docker

from components import component_type
from components.certificates import ClusterCertificates
from components.elasticsearch_node import HEALTHCHECK as ES_HEALTHCHECK
from components.kibana import HEALTHCHECK as KIBANA_HEALTHCHECK
from components.setup_job import setup_job_files
from components.swarm_objects import config_file, engine_environment, node_label, secret_file
from escluster.plan import (
    ELASTIC_PASSWORD_FILE,
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
    kibana_start_script,
    setup_script,
)
from escluster.swarm import Swarm

CONVERGE_TIMEOUT = "10m"
STOP_GRACE_PERIOD = "120s"


@dataclass(frozen=True)
class SwarmSecrets:
    elastic_password: pulumi.Output[str]
    kibana_system_password: pulumi.Output[str]
    # Kibana keystore entry → value.
    kibana_keystore: Mapping[str, pulumi.Output[str]]


def _healthcheck(test: str) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
    # A task with a healthcheck counts as running only once healthy, so converge waits for health.
    return docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
        tests=["CMD-SHELL", test], interval="10s", timeout="10s", start_period="30s", retries=60
    )


class SwarmStack(pulumi.ComponentResource):
    es_services: dict[str, docker.Service]
    setup_service: docker.Service
    kibana_service: docker.Service

    def __init__(
        self,
        name: str,
        plan: ClusterPlan,
        *,
        swarm: Swarm,
        certificates: ClusterCertificates,
        secrets: SwarmSecrets,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
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
            name=f"{plan.cluster_name}-overlay",
            driver="overlay",
            attachable=True,
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(delete_before_replace=True)),
        )
        ca = certificates.ca_cert_pem
        password_file = secret_file(
            f"{name}-elastic-password", ELASTIC_PASSWORD_FILE, secrets.elastic_password, self._child
        )
        self.es_services = {
            node.name: self._es_service(plan, node, certificates, password_file, labels.get(node.swarm_node or "", []))
            for node in plan.nodes
        }
        self.setup_service = self._setup_service(plan, ca, secrets)
        self.kibana_service = self._kibana_service(plan, ca, secrets)
        self.register_outputs({"network": self.network.name})

    def _label_nodes(self, swarm: Swarm) -> dict[str, list[pulumi.Resource]]:
        environment = engine_environment(swarm.manager, swarm.cert_path)
        return {
            target.node: [
                node_label(
                    f"label-{target.node}-{key}",
                    swarm_node=target.node,
                    key=key,
                    value=value,
                    environment=environment,
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
        restart: str = "any",
        endpoint: docker.ServiceEndpointSpecArgs,
        constraints: Sequence[str] = (),
        memory_bytes: int | None = None,
        converge: bool = True,
        order: str = "stop-first",
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
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition=restart, delay="10s"),
            ),
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=replicas)),
            endpoint_spec=endpoint,
            update_config=docker.ServiceUpdateConfigArgs(parallelism=1, order=order, failure_action="pause"),
            converge_config=docker.ServiceConvergeConfigArgs(delay="10s", timeout=CONVERGE_TIMEOUT)
            if converge
            else None,
            opts=pulumi.ResourceOptions.merge(
                self._child, pulumi.ResourceOptions(depends_on=list(depends_on), delete_before_replace=True)
            ),
        )

    def _es_service(
        self,
        plan: ClusterPlan,
        node: NodePlan,
        certificates: ClusterCertificates,
        password_file: docker.ServiceTaskSpecContainerSpecSecretArgs,
        labels: Sequence[pulumi.Resource],
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
            env={"ES_JAVA_OPTS": node.jvm_options, "ELASTIC_PASSWORD_FILE": ELASTIC_PASSWORD_FILE},
            configs=[
                config_file(
                    f"{node.name}-settings",
                    f"{ES_CONFIG_DIR}/elasticsearch.yml",
                    render_yaml(node.settings),
                    self._child,
                ),
                config_file(f"{node.name}-ca", node.tls.ca, certificates.ca_cert_pem, self._child),
                config_file(f"{node.name}-cert", node.tls.certificate, cert.cert_pem, self._child),
            ],
            secrets=[secret_file(f"{node.name}-key", node.tls.key, cert.key_pem, self._child), password_file],
            # A named volume on the pinned node, created by the swarm and left alone when the service goes.
            mounts=[
                docker.ServiceTaskSpecContainerSpecMountArgs(
                    type="volume", source=f"{node.name}-data", target=ES_DATA_DIR
                )
            ],
            healthcheck=_healthcheck(ES_HEALTHCHECK.format(ca=node.tls.ca)),
            stop_grace_period=STOP_GRACE_PERIOD,
        )
        return self._service(
            node.name,
            container,
            endpoint=docker.ServiceEndpointSpecArgs(mode="dnsrr", ports=ports),
            constraints=node.placement_constraints,
            memory_bytes=node.memory_bytes,
            depends_on=labels,
        )

    def _setup_service(self, plan: ClusterPlan, ca: pulumi.Output[str], secrets: SwarmSecrets) -> docker.Service:
        name = f"{plan.cluster_name}-setup"
        ca_file = f"{ES_CONFIG_DIR}/certs/ca/ca.crt"
        container = docker.ServiceTaskSpecContainerSpecArgs(
            image=f"{ES_IMAGE}:{plan.version}",
            args=["bash", "-c", setup_script(plan.es_urls, ca_file)],
            configs=[config_file(f"{name}-ca", ca_file, ca, self._child)],
            secrets=[
                secret_file(f"{name}-{PurePosixPath(path).stem}", path, content, self._child)
                for path, content in setup_job_files(secrets.elastic_password, secrets.kibana_system_password).items()
            ],
        )
        # Runs once (restart none). A finished task never counts as running, so nothing waits on
        # convergence here: Kibana's health, which needs the password, is the gate.
        return self._service(
            name,
            container,
            restart="none",
            endpoint=docker.ServiceEndpointSpecArgs(mode="dnsrr"),
            converge=False,
            depends_on=list(self.es_services.values()),
        )

    def _kibana_service(self, plan: ClusterPlan, ca: pulumi.Output[str], secrets: SwarmSecrets) -> docker.Service:
        name = f"{plan.cluster_name}-kibana"
        kibana = plan.kibana
        container = docker.ServiceTaskSpecContainerSpecArgs(
            image=f"{KIBANA_IMAGE}:{kibana.version}",
            args=["bash", "-c", kibana_start_script()],
            configs=[
                config_file(
                    f"{name}-settings", f"{KIBANA_CONFIG_DIR}/kibana.yml", render_yaml(kibana.settings), self._child
                ),
                config_file(f"{name}-ca", kibana.ca_file, ca, self._child),
            ],
            secrets=[
                secret_file(f"{name}-{entry}", f"{KIBANA_SECRET_DIR}/{entry}", value, self._child)
                for entry, value in sorted(secrets.kibana_keystore.items())
            ],
            healthcheck=_healthcheck(KIBANA_HEALTHCHECK),
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
            depends_on=[self.setup_service],
        )
