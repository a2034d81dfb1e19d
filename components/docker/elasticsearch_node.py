"""ElasticsearchNode (Docker): one node as a container with its own persistent data volume."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from components import component_type
from components.docker.common import (
    attach_to,
    health_gated,
    megabytes,
    named_child,
    public_file,
    published_port,
    secret_file,
)
from components.shared.certificates import IssuedCertificate
from escluster.plan import ES_CONFIG_DIR, ES_DATA_DIR, HTTP_PORT, NodePlan, render_yaml
from escluster.scripts import es_healthcheck
from escluster.security import roles_file, users_roles_file

NOFILE_LIMIT = 65535
UNLIMITED = -1
STOP_GRACE_SECONDS = 120


class ElasticsearchNode(pulumi.ComponentResource):
    container: docker.Container
    data_volume: docker.Volume

    def __init__(
        self,
        node: NodePlan,
        *,
        image_id: pulumi.Input[str],
        network_name: pulumi.Input[str],
        certificate: IssuedCertificate,
        ca_cert_pem: pulumi.Input[str],
        file_realm_users: pulumi.Input[str],
        memory_lock: bool,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`after`: what the container waits for (its prepare step on a formed cluster); a component's
        depends_on would not reach it."""
        super().__init__(component_type("ElasticsearchNode"), node.name, None, opts)
        # The data outlives the container: `pulumi destroy` and replacements leave the volume in place,
        # and its fixed name lets a later `pulumi up` mount the same data again.
        self.data_volume = docker.Volume(
            f"{node.name}-data",
            name=f"{node.name}-data",
            opts=named_child(self, retain_on_delete=True),
        )
        ulimits = [docker.ContainerUlimitArgs(name="nofile", soft=NOFILE_LIMIT, hard=NOFILE_LIMIT)]
        if memory_lock:
            ulimits.append(docker.ContainerUlimitArgs(name="memlock", soft=UNLIMITED, hard=UNLIMITED))
        ports = []
        if node.http_host_port is not None:
            ports.append(published_port(HTTP_PORT, node.http_host_port, node.bind_ip))
        if node.transport_host_port is not None:
            ports.append(published_port(node.transport_host_port, node.transport_host_port, node.bind_ip))
        memory = megabytes(node.memory_bytes)
        self.container = docker.Container(
            node.name,
            name=node.name,
            hostname=node.name,
            image=image_id,
            envs=[f"ES_JAVA_OPTS={node.jvm_options}"],
            uploads=[
                public_file(f"{ES_CONFIG_DIR}/elasticsearch.yml", render_yaml(node.settings)),
                public_file(node.tls.ca, ca_cert_pem),
                public_file(node.tls.certificate, certificate.cert_pem),
                secret_file(node.tls.key, certificate.key_pem),
                # The program's own users (escluster.security); no password of the native realm reaches a node.
                secret_file(f"{ES_CONFIG_DIR}/users", file_realm_users),
                public_file(f"{ES_CONFIG_DIR}/users_roles", users_roles_file()),
                public_file(f"{ES_CONFIG_DIR}/roles.yml", roles_file()),
            ],
            memory=memory,
            # Equal to the memory limit: no swap, as Elasticsearch asks.
            memory_swap=memory,
            ulimits=ulimits,
            volumes=[docker.ContainerVolumeArgs(volume_name=self.data_volume.name, container_path=ES_DATA_DIR)],
            networks_advanced=[attach_to(network_name, node.name)],
            ports=ports,
            **health_gated(es_healthcheck(node.tls.ca)),
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            opts=named_child(self, depends_on=list(after)),
        )
        self.register_outputs({"container_name": self.container.name, "data_volume": self.data_volume.name})
