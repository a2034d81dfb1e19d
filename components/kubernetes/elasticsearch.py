"""ElasticsearchNodeSet (Kubernetes): one node group as a StatefulSet, with its PodDisruptionBudget,
settings ConfigMap, certificate Secret and data volume claims. The helm chart's StatefulSet, and ECK's
node sets, are the model.

What restarts the pods, and what does not (pulumi-kubernetes replaces a ConfigMap or Secret whose data
changes, provider/pkg/provider/diff.go forceNewProperties):
- settings: an auto-named ConfigMap, so new settings are a new name in the pod template, which rolls the
  pods (a file mounted with subPath never sees an update);
- certificates: one Secret per group, fixed name, mounted as a directory: a renewal or a new pod's
  certificate reaches the running pods' files, which Elasticsearch reloads, so scale-out restarts nothing;
- data: volumeClaimTemplates are immutable (the API server refuses, Pulumi would replace the
  StatefulSet), so their changes are ignored; a larger `storage` grows each claim in place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import component_type
from components.kubernetes.objects import PATCH_FORCE_ANNOTATION, SKIP_AWAIT_ANNOTATION, await_timeout, manifest
from components.shared.certificates import IssuedCertificate
from escluster.k8s_plan import CERTS_DIR, POD_NAME_ENV, PROBE_DIR, GroupPlan, KubernetesPlan
from escluster.plan import ES_CONFIG_DIR, ES_DATA_DIR, ES_IMAGE, HTTP_PORT, TRANSPORT_PORT, render_yaml
from escluster.scripts import es_readiness_script
from escluster.security import roles_file, users_roles_file
from escluster.units import kubernetes_quantity

ES_UID = 1000
MAX_MAP_COUNT = 262144
TERMINATION_GRACE_SECONDS = 120
DATA_CLAIM = "data"
# ECK's default container security context for Elasticsearch: nothing it does needs a privilege.
ES_CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": ES_UID,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
# The sysctl step must run as root and privileged: the kubelet (verifyRunAsNonRoot) would refuse it under a
# pod-level runAsNonRoot, so that setting lives on the Elasticsearch container only.
SYSCTL_SECURITY = {"privileged": True, "runAsUser": 0, "runAsNonRoot": False}


def _anti_affinity(mode: str, labels: Mapping[str, str]) -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": dict(labels)}, "topologyKey": "kubernetes.io/hostname"}
    if mode == "required":
        return {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    return {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}


def _config_file(name: str) -> dict[str, Any]:
    return {"name": "config", "mountPath": f"{ES_CONFIG_DIR}/{name}", "subPath": name}


class ElasticsearchNodeSet(pulumi.ComponentResource):
    statefulset: k8s.apps.v1.StatefulSet
    # Changes exactly when the pod template does (a restart of every pod, one at a time).
    template_digest: pulumi.Output[str]

    def __init__(
        self,
        group: GroupPlan,
        plan: KubernetesPlan,
        *,
        namespace: pulumi.Input[str],
        ca_cert_pem: pulumi.Input[str],
        certificates: Mapping[str, IssuedCertificate],
        file_realm_secret: pulumi.Input[str],
        certs_provider: k8s.Provider,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`after`: what the StatefulSet waits for (the drain of the nodes this run removes);
        `certs_provider`: one that updates a Secret's data in place (`enable_secret_mutable`)."""
        super().__init__(component_type("ElasticsearchNodeSet"), group.statefulset, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The namespace is the Namespace resource's output, so every object here waits for it.
        name = group.statefulset
        labels = {**plan.cluster_labels, "elasticsearch.escluster/node-group": group.group}
        settings = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=manifest({"namespace": namespace, "labels": labels}),
            data={
                "elasticsearch.yml": render_yaml(group.settings),
                "users_roles": users_roles_file(),
                "roles.yml": roles_file(),
            },
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
            opts=pulumi.ResourceOptions(parent=self, provider=certs_provider),
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
                    "securityContext": SYSCTL_SECURITY,
                }
            )
        spec: dict[str, Any] = {
            "serviceName": plan.headless_service,
            "replicas": group.replicas,
            # Parallel: an OrderedReady start deadlocks, as pod 0 waits for a cluster that needs pod 1.
            "podManagementPolicy": "Parallel",
            # A new template restarts no pod by itself: the roll task restarts them one at a time
            # across every StatefulSet (components/kubernetes/rolling.py), as ECK does.
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": labels},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"fsGroup": ES_UID},
                    "affinity": {"podAntiAffinity": _anti_affinity(k8s_settings.anti_affinity, plan.cluster_labels)},
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "initContainers": init_containers,
                    "containers": [
                        {
                            "name": "elasticsearch",
                            "image": f"{ES_IMAGE}:{plan.version}",
                            "securityContext": ES_CONTAINER_SECURITY,
                            "env": [
                                {
                                    "name": POD_NAME_ENV,
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                {"name": "ES_JAVA_OPTS", "value": group.jvm_options},
                            ],
                            "ports": [
                                {"name": "https", "containerPort": HTTP_PORT},
                                {"name": "transport", "containerPort": TRANSPORT_PORT},
                            ],
                            "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
                            "readinessProbe": {
                                "exec": {
                                    "command": [
                                        "bash",
                                        "-c",
                                        es_readiness_script(plan.tls.ca, f"{PROBE_DIR}/probe.curlrc"),
                                    ]
                                },
                                "initialDelaySeconds": 10,
                                "periodSeconds": 10,
                                "timeoutSeconds": 5,
                                "failureThreshold": 3,
                            },
                            "volumeMounts": [
                                {"name": DATA_CLAIM, "mountPath": ES_DATA_DIR},
                                _config_file("elasticsearch.yml"),
                                _config_file("users_roles"),
                                _config_file("roles.yml"),
                                {
                                    "name": "file-realm",
                                    "mountPath": f"{ES_CONFIG_DIR}/users",
                                    "subPath": "users",
                                },
                                {"name": "probe", "mountPath": PROBE_DIR, "readOnly": True},
                                {"name": "certs", "mountPath": CERTS_DIR, "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": settings.metadata.name}},
                        {"name": "certs", "secret": {"secretName": certs.metadata.name, "defaultMode": 0o440}},
                        {
                            "name": "file-realm",
                            "secret": {"secretName": file_realm_secret, "defaultMode": 0o440},
                        },
                        {
                            "name": "probe",
                            "secret": {
                                "secretName": file_realm_secret,
                                "defaultMode": 0o440,
                                "items": [{"key": "probe.curlrc", "path": "probe.curlrc"}],
                            },
                        },
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": DATA_CLAIM, "labels": labels},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": k8s_settings.storage_class,
                        "resources": {"requests": {"storage": kubernetes_quantity(group.storage_bytes)}},
                    },
                }
            ],
        }
        self.template_digest = pulumi.Output.from_input(spec["template"]).apply(
            lambda template: hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]
        )
        self.statefulset = k8s.apps.v1.StatefulSet(
            name,
            metadata=manifest(
                {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": {
                        **await_timeout(group.await_timeout_seconds),
                        # A formed cluster's roll waits for the pods itself (components/kubernetes/rolling.py).
                        **({SKIP_AWAIT_ANNOTATION: "true"} if plan.lifecycle.formed else {}),
                    },
                }
            ),
            spec=manifest(spec),
            # Immutable in the API: a change would replace the StatefulSet and stop every pod at once.
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["spec.volumeClaimTemplates"], depends_on=list(after)
            ),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=manifest({"name": name, "namespace": namespace, "labels": labels}),
            spec=manifest({"maxUnavailable": 1, "selector": {"matchLabels": labels}}),
            opts=child,
        )
        # Each pod's claim at the configured size: growing `storage` expands the claims in place (the
        # StorageClass must allow volume expansion). The StatefulSet controller made the claims and owns
        # their size, so the patch takes it over (a server-side apply of another value would conflict).
        # Kept on delete: the claim's size is a required field. A pod new to a formed cluster gets its
        # claim only once the roll has waited for it (`patch_new_claims`).
        self._namespace, self._group = namespace, group
        self.claim_patches: list[k8s.core.v1.PersistentVolumeClaimPatch] = []
        recorded = set(plan.lifecycle.recorded_nodes) if plan.lifecycle.formed else set(group.pods)
        self._new_pods = [pod for pod in group.pods if pod not in recorded]
        for pod in group.pods:
            if pod in recorded:
                self._patch_claim(pod, [self.statefulset])
        self.register_outputs({"statefulset": self.statefulset.metadata.name})

    def _patch_claim(self, pod: str, after: Sequence[pulumi.Resource]) -> None:
        self.claim_patches.append(
            k8s.core.v1.PersistentVolumeClaimPatch(
                f"{DATA_CLAIM}-{pod}",
                metadata=manifest(
                    {
                        "name": f"{DATA_CLAIM}-{pod}",
                        "namespace": self._namespace,
                        "annotations": {PATCH_FORCE_ANNOTATION: "true"},
                    }
                ),
                spec=manifest({"resources": {"requests": {"storage": kubernetes_quantity(self._group.storage_bytes)}}}),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(after), retain_on_delete=True),
            )
        )

    def patch_new_claims(self, after: Sequence[pulumi.Resource]) -> None:
        """The claims of pods new to a formed cluster, once `after` (the roll) has waited for them."""
        for pod in self._new_pods:
            self._patch_claim(pod, after)
