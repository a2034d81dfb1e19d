"""KibanaPair (Docker): Kibana instances paired with the cluster over HTTPS as kibana_system."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    remote_image,
    secret_file,
)
from escluster.plan import KIBANA_CONFIG_DIR, KIBANA_IMAGE, KIBANA_PORT, KibanaPlan, render_yaml
from escluster.scripts import (
    KIBANA_KEYSTORE_ENTRIES,
    KIBANA_SECRET_DIR,
    KIBANA_STARTUP_SECONDS,
    keystore_value,
    kibana_healthcheck,
    kibana_start_script,
)


class KibanaPair(pulumi.ComponentResource):
    containers: list[docker.Container]

    def __init__(
        self,
        name: str,
        kibana: KibanaPlan,
        *,
        network_name: pulumi.Input[str],
        ca_cert_pem: pulumi.Input[str],
        keystore: Mapping[str, pulumi.Input[str]],
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`after`: what the containers wait for (on a formed cluster, the roll of the nodes)."""
        super().__init__(component_type("KibanaPair"), name, None, opts)
        if set(keystore) != set(KIBANA_KEYSTORE_ENTRIES):
            raise ValueError(f"keystore needs exactly {sorted(KIBANA_KEYSTORE_ENTRIES)}")
        image = remote_image(f"{name}-image", KIBANA_IMAGE, kibana.version, pulumi.ResourceOptions(parent=self))
        memory = megabytes(kibana.memory_bytes)
        uploads = [
            public_file(f"{KIBANA_CONFIG_DIR}/kibana.yml", render_yaml(kibana.settings)),
            public_file(kibana.ca_file, ca_cert_pem),
            *(
                secret_file(f"{KIBANA_SECRET_DIR}/{entry}", pulumi.Output.from_input(value).apply(keystore_value))
                for entry, value in sorted(keystore.items())
            ),
        ]
        self.containers = []
        for instance, host_port in zip(kibana.names, kibana.host_ports, strict=True):
            self.containers.append(
                docker.Container(
                    instance,
                    name=instance,
                    hostname=instance,
                    image=image.image_id,
                    command=["bash", "-c", kibana_start_script()],
                    envs=[f"SERVER_NAME={instance}"],
                    uploads=uploads,
                    memory=memory,
                    memory_swap=memory,
                    networks_advanced=[attach_to(network_name, instance)],
                    ports=[published_port(KIBANA_PORT, host_port, kibana.bind_ip)],
                    # Kibana answers once the setup step set its password: it waits longer than the step.
                    **health_gated(kibana_healthcheck(), KIBANA_STARTUP_SECONDS),
                    # A wait that timed out leaves the container in the state with an error; the next
                    # `up` replaces it (and waits again) instead of an empty update.
                    opts=named_child(self, replace_on_changes=["*"], depends_on=list(after)),
                )
            )
        self.register_outputs({"containers": [c.name for c in self.containers]})
