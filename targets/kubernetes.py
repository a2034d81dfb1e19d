"""The `kubernetes` target: StatefulSets, a headless Service, Kibana, and MetalLB on bare metal (`prod`)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.certificates import ClusterCertificates
from components.credentials import StackCredentials
from components.k8s_elasticsearch import ElasticsearchNodeSet
from components.k8s_kibana import KibanaDeployment
from components.k8s_objects import manifest
from components.k8s_setup_job import KubernetesSetupJob
from components.metallb import MetalLBPool
from escluster.k8s_plan import KubernetesPlan
from escluster.plan import HTTP_PORT, KIBANA_PORT, TRANSPORT_PORT
from targets import StackOutputs


def _service(
    name: str,
    plan: KubernetesPlan,
    *,
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
    metadata = {"name": name, "namespace": plan.namespace, "labels": plan.cluster_labels, "annotations": annotations}
    return k8s.core.v1.Service(
        name,
        metadata=manifest(metadata),
        spec=manifest({"type": "LoadBalancer" if lb else "ClusterIP", "selector": selector, "ports": ports}),
        opts=opts,
    )


def deploy(plan: KubernetesPlan, credentials: StackCredentials) -> StackOutputs:
    base = pulumi.ResourceOptions()
    if plan.settings.context:
        base = pulumi.ResourceOptions(providers=[k8s.Provider("kubernetes", context=plan.settings.context)])
    namespace = k8s.core.v1.Namespace(plan.namespace, metadata=manifest({"name": plan.namespace}), opts=base)
    in_namespace = pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(depends_on=[namespace]))
    certificates = ClusterCertificates(
        f"{plan.cluster_name}-certs", plan.cluster_name, plan.certificates, plan.cert_validity_hours
    )
    password = k8s.core.v1.Secret(
        f"{plan.cluster_name}-elastic-password",
        metadata=manifest({"name": f"{plan.cluster_name}-elastic-password", "namespace": plan.namespace}),
        string_data=pulumi.Output.secret({"password": credentials.elastic_password}),
        opts=in_namespace,
    )
    es_pods = plan.cluster_labels
    k8s.core.v1.Service(
        plan.headless_service,
        metadata=manifest({"name": plan.headless_service, "namespace": plan.namespace, "labels": es_pods}),
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
        opts=in_namespace,
    )
    service_opts = in_namespace
    metallb = plan.settings.metallb
    if metallb is not None:
        pool = MetalLBPool(f"{plan.cluster_name}-lb", metallb, opts=base)
        # Services wait for an external IP: the pool and its advertisement come first.
        service_opts = pulumi.ResourceOptions.merge(in_namespace, pulumi.ResourceOptions(depends_on=[pool]))
    lb = plan.settings.load_balancer
    _service(
        plan.http_service,
        plan,
        selector=es_pods,
        ports=[{"name": "https", "port": HTTP_PORT, "targetPort": HTTP_PORT}],
        fixed_ip=lb.elasticsearch_ip if lb else None,
        opts=service_opts,
    )
    node_sets = [
        ElasticsearchNodeSet(
            group,
            plan,
            ca_cert_pem=certificates.ca_cert_pem,
            certificates=certificates.node_certificates,
            elastic_password_secret=password.metadata.name,
            opts=in_namespace,
        )
        for group in plan.groups
        if group.replicas > 0
    ]
    setup = KubernetesSetupJob(
        f"{plan.cluster_name}-setup",
        plan,
        ca_cert_pem=certificates.ca_cert_pem,
        elastic_password=credentials.elastic_password,
        kibana_system_password=credentials.kibana_system_password,
        wait_for=[node_set.statefulset for node_set in node_sets],
        opts=in_namespace,
    )
    KibanaDeployment(
        plan.kibana_service,
        plan,
        ca_cert_pem=certificates.ca_cert_pem,
        keystore=credentials.kibana_keystore,
        wait_for=[setup.job],
        opts=in_namespace,
    )
    kibana_service = f"{plan.kibana_service}-http"
    _service(
        kibana_service,
        plan,
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
        elastic_password=credentials.elastic_password,
    )
