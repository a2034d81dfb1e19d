"""KibanaDeployment (Kubernetes): Kibana as a Deployment; its keystore filled at start from a Secret.

Settings, CA and keystore values are auto-named objects, so a change is a new name in the pod template
and rolls Kibana (pulumi-kubernetes replaces a ConfigMap or Secret whose data changes, and a fixed name
would leave the running pods on the old values). The values go through the keystore, as on Docker: the
image's `kibana-docker` would turn secret environment variables into command-line arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import component_type
from components.kubernetes.objects import await_timeout, manifest
from components.kubernetes.setup_job import job_await_seconds
from escluster.k8s_plan import KubernetesPlan
from escluster.plan import KIBANA_CONFIG_DIR, KIBANA_IMAGE, KIBANA_PORT, render_yaml
from escluster.scripts import KIBANA_SECRET_DIR, keystore_value, kibana_healthcheck, kibana_start_script
from escluster.units import kubernetes_quantity

KIBANA_UID = 1000
# Kibana is ready once the setup Job set its password: it waits 10 minutes past the Job.
KIBANA_AFTER_SETUP_SECONDS = 10 * 60


class KibanaDeployment(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment

    def __init__(
        self,
        name: str,
        plan: KubernetesPlan,
        *,
        namespace: pulumi.Input[str],
        ca_cert_pem: pulumi.Input[str],
        keystore: Mapping[str, pulumi.Input[str]],
        recreate: bool,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`recreate`: stop every instance before starting the new ones, as for a version change (two Kibana
        versions must not run against one cluster at once: ECK does the same); `after`: what the Deployment
        waits for (on a formed cluster, the roll of the pods)."""
        super().__init__(component_type("KibanaDeployment"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/name": "kibana", "app.kubernetes.io/instance": plan.cluster_name}
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=manifest({"namespace": namespace, "labels": labels}),
            data={"kibana.yml": render_yaml(plan.kibana_settings), "ca.crt": ca_cert_pem},
            opts=child,
        )
        secret = k8s.core.v1.Secret(
            f"{name}-keystore",
            metadata=manifest({"namespace": namespace, "labels": labels}),
            string_data=pulumi.Output.secret(
                {entry: pulumi.Output.from_input(value).apply(keystore_value) for entry, value in keystore.items()}
            ),
            opts=child,
        )
        memory = kubernetes_quantity(plan.kibana_memory_bytes)
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata=manifest(
                {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": await_timeout(job_await_seconds(plan) + KIBANA_AFTER_SETUP_SECONDS),
                }
            ),
            spec=manifest(
                {
                    "replicas": plan.kibana_replicas,
                    "selector": {"matchLabels": labels},
                    "strategy": {"type": "Recreate" if recreate else "RollingUpdate"},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "securityContext": {"runAsUser": KIBANA_UID, "runAsNonRoot": True, "fsGroup": KIBANA_UID},
                            "containers": [
                                {
                                    "name": "kibana",
                                    "image": f"{KIBANA_IMAGE}:{plan.kibana_version}",
                                    # args, not command: the image's tini stays the entrypoint.
                                    "args": ["bash", "-c", kibana_start_script()],
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                    "ports": [{"name": "http", "containerPort": KIBANA_PORT}],
                                    "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
                                    "readinessProbe": {
                                        "exec": {"command": ["bash", "-c", kibana_healthcheck()]},
                                        "initialDelaySeconds": 10,
                                        "periodSeconds": 10,
                                        "timeoutSeconds": 5,
                                    },
                                    "volumeMounts": [
                                        {
                                            "name": "config",
                                            "mountPath": f"{KIBANA_CONFIG_DIR}/kibana.yml",
                                            "subPath": "kibana.yml",
                                        },
                                        {
                                            "name": "config",
                                            "mountPath": f"{KIBANA_CONFIG_DIR}/certs/ca.crt",
                                            "subPath": "ca.crt",
                                        },
                                        {"name": "keystore", "mountPath": KIBANA_SECRET_DIR, "readOnly": True},
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "config", "configMap": {"name": config.metadata.name}},
                                {
                                    "name": "keystore",
                                    "secret": {"secretName": secret.metadata.name, "defaultMode": 0o440},
                                },
                            ],
                        },
                    },
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
        self.register_outputs({"deployment": self.deployment.metadata.name})
