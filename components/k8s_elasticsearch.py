"""ElasticsearchNodeSet (Kubernetes): one node group as a StatefulSet, with its PodDisruptionBudget,
settings ConfigMap and certificate Secret. The helm chart's StatefulSet, and ECK's node sets, are the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import component_type
from components.certificates import IssuedCertificate
from components.k8s_objects import CONFIG_HASH_ANNOTATION, config_hash, manifest
from escluster.k8s_plan import CERTS_DIR, POD_NAME_ENV, GroupPlan, KubernetesPlan
from escluster.plan import ES_CONFIG_DIR, ES_DATA_DIR, ES_IMAGE, HTTP_PORT, TRANSPORT_PORT, render_yaml
from escluster.scripts import es_readiness_script
from escluster.units import kubernetes_quantity

ES_UID = 1000
MAX_MAP_COUNT = 262144
TERMINATION_GRACE_SECONDS = 120


def _anti_affinity(mode: str, labels: Mapping[str, str]) -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": dict(labels)}, "topologyKey": "kubernetes.io/hostname"}
    if mode == "required":
        return {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    return {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}


class ElasticsearchNodeSet(pulumi.ComponentResource):
    statefulset: k8s.apps.v1.StatefulSet

    def __init__(
        self,
        group: GroupPlan,
        plan: KubernetesPlan,
        *,
        ca_cert_pem: pulumi.Input[str],
        certificates: Mapping[str, IssuedCertificate],
        elastic_password_secret: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(component_type("ElasticsearchNodeSet"), group.statefulset, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        name, namespace = group.statefulset, plan.namespace
        labels = {**plan.cluster_labels, "elasticsearch.escluster/node-group": group.group}
        settings_file = render_yaml(group.settings)
        settings = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=manifest({"name": f"{name}-config", "namespace": namespace, "labels": labels}),
            data={"elasticsearch.yml": settings_file},
            opts=child,
        )
        cert_data: dict[str, pulumi.Input[str]] = {"ca.crt": ca_cert_pem}
        for pod in group.pods:
            cert_data[f"{pod}.crt"] = certificates[pod].cert_pem
            cert_data[f"{pod}.key"] = certificates[pod].key_pem
        certs = k8s.core.v1.Secret(
            f"{name}-certs",
            metadata=manifest({"name": f"{name}-certs", "namespace": namespace, "labels": labels}),
            string_data=pulumi.Output.secret(cert_data),
            opts=child,
        )
        memory = kubernetes_quantity(group.memory_bytes)
        k8s_settings = plan.settings
        init_containers = []
        if k8s_settings.sysctl_init:
            init_containers.append(
                {
                    "name": "sysctl",
                    "image": f"{ES_IMAGE}:{plan.version}",
                    "command": ["sysctl", "-w", f"vm.max_map_count={MAX_MAP_COUNT}"],
                    "securityContext": {"privileged": True, "runAsUser": 0},
                }
            )
        self.statefulset = k8s.apps.v1.StatefulSet(
            name,
            metadata=manifest({"name": name, "namespace": namespace, "labels": labels}),
            spec=manifest(
                {
                    "serviceName": plan.headless_service,
                    "replicas": group.replicas,
                    # Parallel: an OrderedReady start deadlocks, as pod 0 waits for a cluster that needs pod 1.
                    "podManagementPolicy": "Parallel",
                    "updateStrategy": {"type": "RollingUpdate"},
                    "selector": {"matchLabels": labels},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                    "template": {
                        "metadata": {
                            "labels": labels,
                            "annotations": {CONFIG_HASH_ANNOTATION: config_hash(settings_file)},
                        },
                        "spec": {
                            "securityContext": {"fsGroup": ES_UID, "runAsUser": ES_UID, "runAsNonRoot": True},
                            "affinity": {
                                "podAntiAffinity": _anti_affinity(k8s_settings.anti_affinity, plan.cluster_labels)
                            },
                            "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                            "initContainers": init_containers,
                            "containers": [
                                {
                                    "name": "elasticsearch",
                                    "image": f"{ES_IMAGE}:{plan.version}",
                                    "env": [
                                        {
                                            "name": POD_NAME_ENV,
                                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                        },
                                        {"name": "ES_JAVA_OPTS", "value": group.jvm_options},
                                        {
                                            "name": "ELASTIC_PASSWORD",
                                            "valueFrom": {
                                                "secretKeyRef": {"name": elastic_password_secret, "key": "password"}
                                            },
                                        },
                                    ],
                                    "ports": [
                                        {"name": "https", "containerPort": HTTP_PORT},
                                        {"name": "transport", "containerPort": TRANSPORT_PORT},
                                    ],
                                    "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
                                    "readinessProbe": {
                                        "exec": {"command": ["bash", "-c", es_readiness_script(plan.tls.ca)]},
                                        "initialDelaySeconds": 10,
                                        "periodSeconds": 10,
                                        "timeoutSeconds": 5,
                                        "failureThreshold": 3,
                                    },
                                    "volumeMounts": [
                                        {"name": "data", "mountPath": ES_DATA_DIR},
                                        {
                                            "name": "config",
                                            "mountPath": f"{ES_CONFIG_DIR}/elasticsearch.yml",
                                            "subPath": "elasticsearch.yml",
                                        },
                                        {"name": "certs", "mountPath": CERTS_DIR, "readOnly": True},
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "config", "configMap": {"name": settings.metadata.name}},
                                {"name": "certs", "secret": {"secretName": certs.metadata.name, "defaultMode": 0o440}},
                            ],
                        },
                    },
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data", "labels": labels},
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "storageClassName": k8s_settings.storage_class,
                                "resources": {"requests": {"storage": kubernetes_quantity(group.storage_bytes)}},
                            },
                        }
                    ],
                }
            ),
            opts=child,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=manifest({"name": name, "namespace": namespace, "labels": labels}),
            spec=manifest({"maxUnavailable": 1, "selector": {"matchLabels": labels}}),
            opts=child,
        )
        self.register_outputs({"statefulset": self.statefulset.metadata.name})
