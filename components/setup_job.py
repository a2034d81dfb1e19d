"""CertSetupJob (Docker): the one-shot setup container of Elastic's compose, minus certificate
generation (pulumi-tls does that, see ClusterCertificates).

It waits for Elasticsearch over TLS, sets the kibana_system password (idempotent) and exits.
Kibana reads `succeeded`, so it is created only after the job exited 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from components import component_type
from components.docker_common import attach_to, named_child, public_file, secret_file
from escluster.plan import ES_CONFIG_DIR
from escluster.scripts import SETUP_CURL_CONFIG, SETUP_PASSWORD_BODY, curl_config_user, setup_script


def setup_job_files(
    elastic_password: pulumi.Input[str], kibana_system_password: pulumi.Input[str]
) -> dict[str, pulumi.Output[str]]:
    """The setup job's secret files by path in the container, on every target: curl credentials of
    `elastic`, and the request body carrying the new kibana_system password."""
    return {
        SETUP_CURL_CONFIG: pulumi.Output.from_input(elastic_password).apply(lambda pw: curl_config_user("elastic", pw)),
        SETUP_PASSWORD_BODY: pulumi.Output.from_input(kibana_system_password).apply(
            lambda pw: json.dumps({"password": pw})
        ),
    }


class SetupJobFailed(pulumi.RunError):
    pass


def require_success(container_name: str, exit_code: int | None) -> bool:
    # None during a preview, before the job ran.
    if exit_code not in (0, None):
        raise SetupJobFailed(
            f"setup job {container_name} exited with code {int(exit_code)}; see `docker logs {container_name}`"
        )
    return True


class CertSetupJob(pulumi.ComponentResource):
    container: docker.Container
    succeeded: pulumi.Output[bool]

    def __init__(
        self,
        name: str,
        *,
        image_id: pulumi.Input[str],
        network_name: pulumi.Input[str],
        es_urls: Sequence[str],
        ca_cert_pem: pulumi.Input[str],
        elastic_password: pulumi.Input[str],
        kibana_system_password: pulumi.Input[str],
        wait_for: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(component_type("CertSetupJob"), name, None, opts)
        ca_file = f"{ES_CONFIG_DIR}/certs/ca/ca.crt"
        self.container = docker.Container(
            name,
            name=name,
            image=image_id,
            command=["bash", "-c", setup_script(es_urls, ca_file)],
            uploads=[
                public_file(ca_file, ca_cert_pem),
                *(
                    secret_file(path, content)
                    for path, content in setup_job_files(elastic_password, kibana_system_password).items()
                ),
            ],
            networks_advanced=[attach_to(network_name, name)],
            # Run once to the end: attach waits for the exit, must_run=False keeps the stopped container.
            attach=True,
            logs=True,
            must_run=False,
            restart="no",
            opts=named_child(self, depends_on=list(wait_for)),
        )
        self.succeeded = self.container.exit_code.apply(lambda code: require_success(name, code))
        self.register_outputs({"exit_code": self.container.exit_code})
