"""The `kubernetes` target: StatefulSets, a headless Service, Kibana, and MetalLB on bare metal (`prod`)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.elasticsearch import ElasticsearchNodeSet
from components.kubernetes.kibana import KibanaDeployment
from components.kubernetes.metallb import MetalLBPool
from components.kubernetes.objects import manifest, pod_security_labels
from components.kubernetes.rolling import KubernetesRoll
from components.kubernetes.setup_job import KubernetesSetupJob
from components.shared.certificates import ClusterCertificates
from components.shared.credentials import StackCredentials
from escluster.k8s_plan import KubernetesPlan
from escluster.plan import HTTP_PORT, KIBANA_PORT, TRANSPORT_PORT
from escluster.scripts import curl_config_user
from escluster.security import PROBE_USER
from targets import StackOutputs


def _service(
    name: str,
    plan: KubernetesPlan,
    *,
    namespace: pulumi.Input[str],
    selector: dict[str, str],
    ports: list[dict[str, object]],
    fixed_ip: str | None,
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Service:
    """A LoadBalancer Service asking MetalLB's pool (and a fixed IP in it), or a ClusterIP one."""
    lb = plan.settings.load_balancer
    annotations = {}
    if lb is not None:
        annotations["metallb.io/address-pool"] = lb.pool
        if fixed_ip:
            annotations["metallb.io/loadBalancerIPs"] = fixed_ip
    metadata = {"name": name, "namespace": namespace, "labels": plan.cluster_labels, "annotations": annotations}
    return k8s.core.v1.Service(
        name,
        metadata=manifest(metadata),
        spec=manifest({"type": "LoadBalancer" if lb else "ClusterIP", "selector": selector, "ports": ports}),
        opts=opts,
    )


def deploy(plan: KubernetesPlan, credentials: StackCredentials, *, kibana_recreate: bool) -> StackOutputs:
    base = pulumi.ResourceOptions()
    access = plan.access
    if plan.settings.context:
        provider = k8s.Provider("kubernetes", context=access.context, kubeconfig=access.kubeconfig)
        base = pulumi.ResourceOptions(providers=[provider])
    # Deleting a namespace deletes the data claims in it (the namespace controller removes every object;
    # a StatefulSet's claim retention policy does not apply): `pulumi destroy` leaves it in place. The next
    # `up` then finds it: its own provider adopts an existing namespace instead of failing on it
    # (pulumi-kubernetes `upsertExistingObjects`), for the namespace alone.
    # Privileged pods (the sysctl step) need the `privileged` Pod Security level.
    adopting = k8s.Provider(
        "kubernetes-namespace", context=access.context, kubeconfig=access.kubeconfig, upsert_existing_objects=True
    )
    # The certificates' Secret keeps its name, so a renewal reaches the running pods' files (Elasticsearch
    # reloads them) instead of a new pod template. pulumi-kubernetes replaces a Secret whose data changes,
    # deleting it first when it has a fixed name (provider/pkg/provider/diff.go forceNewProperties, provider.go
    # Diff: deleteBeforeReplace); this provider, for that Secret alone, updates it in place.
    mutable_secrets = k8s.Provider(
        "kubernetes-mutable-secrets", context=access.context, kubeconfig=access.kubeconfig, enable_secret_mutable=True
    )
    namespace = k8s.core.v1.Namespace(
        plan.namespace,
        metadata=manifest({"name": plan.namespace, "labels": pod_security_labels(plan.pod_security_level)}),
        opts=pulumi.ResourceOptions(provider=adopting, retain_on_delete=True),
    )
    # Objects name the namespace by the Namespace's output, so each waits for it (a component's
    # depends_on does not reach its children).
    namespace_name = namespace.metadata.name
    # On a formed cluster: nodes this run removes are drained before their StatefulSets shrink, and changed
    # pods restart one at a time after them (a new cluster's pods start together).
    roll = KubernetesRoll(f"{plan.cluster_name}-rolling", plan, admin_password=credentials.admin_password)
    certificates = ClusterCertificates(
        f"{plan.cluster_name}-certs",
        plan.cluster_name,
        plan.certificates,
        plan.cert_validity_hours,
        ca=plan.lifecycle.ca,
        checks=roll.ca_checks(plan.lifecycle.ca.issuing),
    )
    # The program's file-realm users, and the readiness probe's credentials (escluster.security).
    # Auto-named: new values are a new name in the pod template, which rolls the pods.
    file_realm = k8s.core.v1.Secret(
        f"{plan.cluster_name}-es-file-realm",
        metadata=manifest({"namespace": namespace_name, "labels": plan.cluster_labels}),
        string_data=pulumi.Output.secret(
            {
                "users": credentials.file_realm_users,
                "probe.curlrc": credentials.probe_password.apply(lambda pw: curl_config_user(PROBE_USER, pw)),
            }
        ),
        opts=base,
    )
    es_pods = plan.cluster_labels
    k8s.core.v1.Service(
        plan.headless_service,
        metadata=manifest({"name": plan.headless_service, "namespace": namespace_name, "labels": es_pods}),
        spec=manifest(
            {
                "clusterIP": "None",
                # Discovery must see pods before they are ready: readiness waits for the cluster to form.
                "publishNotReadyAddresses": True,
                "selector": es_pods,
                "ports": [
                    {"name": "https", "port": HTTP_PORT},
                    {"name": "transport", "port": TRANSPORT_PORT},
                ],
            }
        ),
        opts=base,
    )
    service_opts = base
    metallb = plan.settings.metallb
    if metallb is not None:
        pool = MetalLBPool(f"{plan.cluster_name}-lb", metallb, access=access, opts=base)
        # Services wait for an external IP: the pool and its advertisement come first.
        service_opts = pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(depends_on=[pool]))
    lb = plan.settings.load_balancer
    _service(
        plan.http_service,
        plan,
        namespace=namespace_name,
        selector=es_pods,
        ports=[{"name": "https", "port": HTTP_PORT, "targetPort": HTTP_PORT}],
        fixed_ip=lb.elasticsearch_ip if lb else None,
        opts=service_opts,
    )
    node_sets = [
        ElasticsearchNodeSet(
            group,
            plan,
            namespace=namespace_name,
            ca_cert_pem=certificates.ca_cert_pem,
            certificates=certificates.node_certificates,
            file_realm_secret=file_realm.metadata.name,
            certs_provider=mutable_secrets,
            after=roll.before_nodes,
            opts=base,
        )
        for group in plan.groups
        if group.replicas > 0
    ]
    roll_task = roll.roll([s.statefulset for s in node_sets], [s.template_digest for s in node_sets])
    for node_set in node_sets:
        node_set.patch_new_claims([roll_task] if roll_task else [])
    # The setup Job and Kibana start with the nodes: each retries until what it needs is there.
    setup = KubernetesSetupJob(
        f"{plan.cluster_name}-setup",
        plan,
        namespace=namespace_name,
        ca_cert_pem=certificates.ca_cert_pem,
        admin_password=credentials.admin_password,
        elastic_password=credentials.elastic_password,
        kibana_system_password=credentials.kibana_system_password,
        opts=base,
    )
    kibana = KibanaDeployment(
        plan.kibana_service,
        plan,
        namespace=namespace_name,
        ca_cert_pem=certificates.ca_cert_pem,
        keystore=credentials.kibana_keystore,
        recreate=kibana_recreate,
        # On a formed cluster Kibana changes after the pods (a newer Kibana refuses older nodes).
        after=[roll_task] if roll_task else [],
        opts=base,
    )
    kibana_service = f"{plan.kibana_service}-http"
    _service(
        kibana_service,
        plan,
        namespace=namespace_name,
        selector={"app.kubernetes.io/name": "kibana", "app.kubernetes.io/instance": plan.cluster_name},
        ports=[{"name": "http", "port": KIBANA_PORT, "targetPort": KIBANA_PORT}],
        fixed_ip=lb.kibana_ip if lb else None,
        opts=service_opts,
    )
    kibana_host = lb.kibana_ip if lb and lb.kibana_ip else f"{kibana_service}.{plan.namespace}.svc"
    return StackOutputs(
        elasticsearch_url=f"https://{lb.elasticsearch_ip}:{HTTP_PORT}" if lb and lb.elasticsearch_ip else plan.es_url,
        kibana_url=f"http://{kibana_host}:{KIBANA_PORT}",
        ca_certificate=certificates.ca_cert_pem,
        certificate_expiry=certificates.expiry,
        elastic_password=credentials.elastic_password,
        # pulumi-kubernetes returns the Job only once it completed.
        settled=pulumi.Output.all(
            setup.job.status,
            roll.finished,
            kibana.deployment.id,
            *(patch.id for node_set in node_sets for patch in node_set.claim_patches),
        ),
        still_listed=roll.still_listed,
    )
