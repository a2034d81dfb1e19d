"""KubernetesSetupJob: the one-shot job that waits for Elasticsearch over TLS and sets the
kibana_system password (idempotent). pulumi-kubernetes waits for the Job to complete."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

import pulumi
import pulumi_kubernetes as k8s

from components import component_type
from components.k8s_objects import manifest
from components.setup_job import setup_job_files
from escluster.k8s_plan import KubernetesPlan
from escluster.plan import ES_CONFIG_DIR, ES_IMAGE, SECRETS_DIR
from escluster.scripts import SETUP_ATTEMPTS, SETUP_RETRY_SECONDS, setup_script

CA_FILE = f"{ES_CONFIG_DIR}/certs/ca.crt"


class KubernetesSetupJob(pulumi.ComponentResource):
    job: k8s.batch.v1.Job

    def __init__(
        self,
        name: str,
        plan: KubernetesPlan,
        *,
        ca_cert_pem: pulumi.Input[str],
        elastic_password: pulumi.Input[str],
        kibana_system_password: pulumi.Input[str],
        wait_for: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(component_type("KubernetesSetupJob"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        files = k8s.core.v1.Secret(
            f"{name}-files",
            metadata=manifest({"name": f"{name}-files", "namespace": plan.namespace, "labels": plan.cluster_labels}),
            string_data=pulumi.Output.secret(
                {
                    # Mounted at SECRETS_DIR: each file lands at the path the script reads.
                    **{
                        PurePosixPath(path).name: content
                        for path, content in setup_job_files(elastic_password, kibana_system_password).items()
                    },
                    "ca.crt": ca_cert_pem,
                }
            ),
            opts=child,
        )
        self.job = k8s.batch.v1.Job(
            name,
            metadata=manifest({"name": name, "namespace": plan.namespace, "labels": plan.cluster_labels}),
            spec=manifest(
                {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 2 * SETUP_ATTEMPTS * SETUP_RETRY_SECONDS,
                    "template": {
                        "metadata": {"labels": plan.cluster_labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 1000},
                            "containers": [
                                {
                                    "name": "setup",
                                    "image": f"{ES_IMAGE}:{plan.version}",
                                    "command": ["bash", "-c", setup_script([plan.es_url], CA_FILE)],
                                    "volumeMounts": [
                                        {"name": "files", "mountPath": SECRETS_DIR, "readOnly": True},
                                        {"name": "files", "mountPath": CA_FILE, "subPath": "ca.crt", "readOnly": True},
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "files", "secret": {"secretName": files.metadata.name, "defaultMode": 0o440}}
                            ],
                        },
                    },
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(wait_for)),
        )
        self.register_outputs({"job": self.job.metadata.name})
