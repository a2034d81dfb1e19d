"""KubernetesSetupJob: the one-shot Job that sets the `elastic` and `kibana_system` passwords as the
program's file-realm admin (escluster.security), retrying until the cluster answers.

pulumi-kubernetes semantics it relies on (provider/pkg/provider/diff.go, provider.go, await/job.go):
- its inputs are an auto-named Secret, so a rotated password is a new Secret name in the Job's pod
  template; `spec.template` is immutable, so the Job is replaced and runs again;
- a Job that failed (BackoffLimitExceeded / DeadlineExceeded) fails the `up` at once, and with
  `pulumi.com/replaceUnready: "true"` the next `up` replaces a Job that is not Complete: a failure never
  wedges the stack;
- the await timeout comes from `pulumi.com/timeoutSeconds` (default 10 minutes, shorter than the script).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import component_type
from components.kubernetes.objects import REPLACE_UNREADY_ANNOTATION, await_timeout, manifest
from escluster.k8s_plan import KubernetesPlan
from escluster.plan import ES_IMAGE
from escluster.scripts import (
    SetupFiles,
    curl_config_user,
    password_body,
    setup_script,
)
from escluster.security import ADMIN_USER

SETUP_FILES = SetupFiles("/mnt/escluster/setup")
# Room for the image pull and the pod's start beyond the script's own deadline.
JOB_START_SECONDS = 300
SETUP_UID = 1000


def job_deadline_seconds(plan: KubernetesPlan) -> int:
    return plan.setup_timeout_seconds + JOB_START_SECONDS


def job_await_seconds(plan: KubernetesPlan) -> int:
    """How long `pulumi up` waits for the Job: past its own deadline, so the Job's failure is what it sees."""
    return job_deadline_seconds(plan) + 60


class KubernetesSetupJob(pulumi.ComponentResource):
    job: k8s.batch.v1.Job

    def __init__(
        self,
        name: str,
        plan: KubernetesPlan,
        *,
        namespace: pulumi.Input[str],
        ca_cert_pem: pulumi.Input[str],
        admin_password: pulumi.Input[str],
        elastic_password: pulumi.Input[str],
        kibana_system_password: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(component_type("KubernetesSetupJob"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Not the Elasticsearch pods' labels: the Job's pod must not join the ES Services or discovery.
        labels = {"app.kubernetes.io/name": "escluster-setup", "app.kubernetes.io/instance": plan.cluster_name}
        contents: pulumi.Output[dict[str, str]] = pulumi.Output.all(
            admin_password, elastic_password, kibana_system_password, ca_cert_pem
        ).apply(
            lambda values: {
                "admin.curlrc": curl_config_user(ADMIN_USER, values[0]),
                "elastic.json": password_body(values[1]),
                "kibana_system.json": password_body(values[2]),
                "ca.crt": values[3],
            }
        )
        secret_contents: pulumi.Output[dict[str, str]] = pulumi.Output.secret(contents)
        files = k8s.core.v1.Secret(
            f"{name}-files",
            metadata=manifest({"namespace": namespace, "labels": labels}),
            string_data=secret_contents,
            opts=child,
        )
        logs_hint = f"kubectl logs -n {plan.namespace} {plan.groups[0].statefulset}-0, and the other pods"
        self.job = k8s.batch.v1.Job(
            name,
            metadata=manifest(
                {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": {REPLACE_UNREADY_ANNOTATION: "true", **await_timeout(job_await_seconds(plan))},
                }
            ),
            spec=manifest(
                {
                    # The script retries by itself; a failed pod means it gave up, with its reason in the log.
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": job_deadline_seconds(plan),
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "securityContext": {"runAsUser": SETUP_UID, "runAsNonRoot": True, "fsGroup": SETUP_UID},
                            "containers": [
                                {
                                    "name": "setup",
                                    "image": f"{ES_IMAGE}:{plan.version}",
                                    "command": [
                                        "bash",
                                        "-c",
                                        setup_script([plan.es_url], SETUP_FILES, logs_hint, plan.setup_timeout_seconds),
                                    ],
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                    "volumeMounts": [
                                        {"name": "files", "mountPath": SETUP_FILES.directory, "readOnly": True}
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
            opts=child,
        )
        self.register_outputs({"job": self.job.metadata.name})
