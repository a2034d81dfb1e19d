"""KibanaDeployment (Kubernetes): Kibana as a Deployment, credentials and keys from a Secret."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import component_type
from components.k8s_objects import CONFIG_HASH_ANNOTATION, config_hash, manifest
from components.kibana import HEALTHCHECK
from escluster.k8s_plan import KubernetesPlan
from escluster.plan import KIBANA_CONFIG_DIR, KIBANA_IMAGE, KIBANA_PORT, render_yaml
from escluster.units import kubernetes_quantity

# Kibana's image maps these variables onto its settings.
SECRET_ENV = {
    "elasticsearch.password": "ELASTICSEARCH_PASSWORD",
    "xpack.security.encryptionKey": "XPACK_SECURITY_ENCRYPTIONKEY",
    "xpack.encryptedSavedObjects.encryptionKey": "XPACK_ENCRYPTEDSAVEDOBJECTS_ENCRYPTIONKEY",
    "xpack.reporting.encryptionKey": "XPACK_REPORTING_ENCRYPTIONKEY",
}


class KibanaDeployment(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment

    def __init__(
        self,
        name: str,
        plan: KubernetesPlan,
        *,
        ca_cert_pem: pulumi.Input[str],
        keystore: Mapping[str, pulumi.Input[str]],
        wait_for: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(component_type("KibanaDeployment"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/name": "kibana", "app.kubernetes.io/instance": plan.cluster_name}
        settings_file = render_yaml(plan.kibana_settings)
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=manifest({"name": f"{name}-config", "namespace": plan.namespace, "labels": labels}),
            data={"kibana.yml": settings_file, "ca.crt": ca_cert_pem},
            opts=child,
        )
        secret = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata=manifest({"name": f"{name}-secrets", "namespace": plan.namespace, "labels": labels}),
            string_data=pulumi.Output.secret({SECRET_ENV[entry]: value for entry, value in keystore.items()}),
            opts=child,
        )
        memory = kubernetes_quantity(plan.kibana_memory_bytes)
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata=manifest({"name": name, "namespace": plan.namespace, "labels": labels}),
            spec=manifest(
                {
                    "replicas": plan.kibana_replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {
                            "labels": labels,
                            "annotations": {
                                CONFIG_HASH_ANNOTATION: pulumi.Output.from_input(ca_cert_pem).apply(
                                    lambda ca: config_hash(settings_file, ca)
                                )
                            },
                        },
                        "spec": {
                            "securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 1000},
                            "containers": [
                                {
                                    "name": "kibana",
                                    "image": f"{KIBANA_IMAGE}:{plan.kibana_version}",
                                    "env": [
                                        {
                                            "name": variable,
                                            "valueFrom": {
                                                "secretKeyRef": {"name": secret.metadata.name, "key": variable}
                                            },
                                        }
                                        for variable in sorted(SECRET_ENV[entry] for entry in keystore)
                                    ],
                                    "ports": [{"name": "http", "containerPort": KIBANA_PORT}],
                                    "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
                                    "readinessProbe": {
                                        "exec": {"command": ["bash", "-c", HEALTHCHECK]},
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
                                    ],
                                }
                            ],
                            "volumes": [{"name": "config", "configMap": {"name": config.metadata.name}}],
                        },
                    },
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(wait_for)),
        )
        self.register_outputs({"deployment": self.deployment.metadata.name})
