"""The plan for the `kubernetes` target: one StatefulSet per node group, its pods' settings and names.

Pure Python. A StatefulSet's pods share one template, so settings name the pod through `${POD_NAME}`
(Elasticsearch expands environment variables in elasticsearch.yml).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from escluster.changes import Lifecycle, decide
from escluster.config import StackConfig
from escluster.kubernetes import ClusterAccess, Kubernetes
from escluster.plan import (
    ES_CONFIG_DIR,
    ES_DATA_DIR,
    HTTP_PORT,
    INITIAL_MASTER_NODES,
    KIBANA_CONFIG_DIR,
    LOOPBACK_IPS,
    SettingValue,
    TlsFiles,
    kibana_settings,
    security_settings,
)
from escluster.units import jvm_size

POD_NAME_ENV = "POD_NAME"
POD_NAME_REF = "${" + POD_NAME_ENV + "}"
CERTS_DIR = f"{ES_CONFIG_DIR}/certs"
# The readiness probe's credentials (escluster.security PROBE_USER), outside the config directory.
PROBE_DIR = "/mnt/escluster/probe"
CLUSTER_DOMAIN = "cluster.local"
# How long `pulumi up` waits for a StatefulSet to be ready (pulumi-kubernetes' default is 10 minutes): a
# first start pulls the image and forms the cluster; a rolling restart waits for each pod in turn.
STATEFULSET_BASE_TIMEOUT_SECONDS = 20 * 60
STATEFULSET_PER_POD_TIMEOUT_SECONDS = 10 * 60


@dataclass(frozen=True)
class PodCertificate:
    """What a pod's certificate must name (ClusterCertificates reads these fields)."""

    name: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


@dataclass(frozen=True)
class GroupPlan:
    statefulset: str
    group: str
    replicas: int
    memory_bytes: int
    heap_bytes: int
    storage_bytes: int
    settings: Mapping[str, SettingValue]
    pods: tuple[str, ...]

    @property
    def jvm_options(self) -> str:
        size = jvm_size(self.heap_bytes)
        return f"-Xms{size} -Xmx{size}"

    @property
    def roles(self) -> tuple[str, ...]:
        roles = self.settings["node.roles"]
        return tuple(roles) if isinstance(roles, list) else ()

    @property
    def await_timeout_seconds(self) -> int:
        return STATEFULSET_BASE_TIMEOUT_SECONDS + STATEFULSET_PER_POD_TIMEOUT_SECONDS * self.replicas


@dataclass(frozen=True)
class KubernetesPlan:
    cluster_name: str
    version: str
    kibana_version: str
    namespace: str
    headless_service: str
    http_service: str
    kibana_service: str
    groups: tuple[GroupPlan, ...]
    certificates: tuple[PodCertificate, ...]
    kibana_replicas: int
    kibana_memory_bytes: int
    kibana_settings: Mapping[str, SettingValue]
    settings: Kubernetes
    cert_validity_hours: int
    tls: TlsFiles
    lifecycle: Lifecycle
    access: ClusterAccess

    @property
    def es_url(self) -> str:
        return f"https://{self.http_service}.{self.namespace}.svc:{HTTP_PORT}"

    @property
    def setup_timeout_seconds(self) -> int:
        """The setup Job keeps trying as long as `pulumi up` waits for the slowest StatefulSet."""
        return max(group.await_timeout_seconds for group in self.groups)

    @property
    def pod_security_level(self) -> str:
        """The Pod Security Admission level the namespace needs: the sysctl step runs privileged."""
        return "privileged" if self.settings.sysctl_init else "baseline"

    @property
    def bootstrap_nodes(self) -> tuple[str, ...]:
        """The pods whose settings name `cluster.initial_master_nodes` (a new cluster's masters)."""
        return tuple(pod for group in self.groups if INITIAL_MASTER_NODES in group.settings for pod in group.pods)

    @property
    def cluster_labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": "elasticsearch", "app.kubernetes.io/instance": self.cluster_name}


def build_kubernetes_plan(
    config: StackConfig, lifecycle: Lifecycle | None = None, access: ClusterAccess | None = None
) -> KubernetesPlan:
    """The StatefulSets for this run: `lifecycle` says whether the cluster has formed (default: new);
    `access`: how kubectl reaches the cluster (default: `kubernetes.context`)."""
    cluster, k8s = config.cluster, config.k8s
    lifecycle = lifecycle or decide(config, None)
    namespace = k8s.namespace
    headless = f"{cluster.name}-es-headless"
    http = f"{cluster.name}-es-http"
    # Flat names in one Secret per group: a new pod adds keys, not volume items, so scaling out
    # leaves the pod template (and the running pods) alone.
    tls = TlsFiles(
        ca=f"{CERTS_DIR}/ca.crt", certificate=f"{CERTS_DIR}/{POD_NAME_REF}.crt", key=f"{CERTS_DIR}/{POD_NAME_REF}.key"
    )
    single_node = cluster.is_single_node
    initial_masters = [] if single_node or lifecycle.formed else cluster.bootstrap_masters
    lb = k8s.load_balancer
    fixed_ips = tuple(ip for ip in (lb.elasticsearch_ip,) if ip) if lb else ()
    groups, certificates = [], []
    for group in cluster.node_groups:
        statefulset = f"{cluster.name}-{group.name}"
        pods = tuple(f"{statefulset}-{i}" for i in range(group.count))
        settings: dict[str, SettingValue] = {
            "cluster.name": cluster.name,
            "node.name": POD_NAME_REF,
            "node.roles": [str(role) for role in group.roles],
            "network.host": "0.0.0.0",
            "bootstrap.memory_lock": False,
            "path.data": ES_DATA_DIR,
            **security_settings(tls),
        }
        if not k8s.sysctl_init:
            # Without the privileged sysctl step, mmap would need vm.max_map_count >= 262144.
            settings["node.store.allow_mmap"] = False
        if single_node:
            settings["discovery.type"] = "single-node"
        else:
            # The headless Service publishes not-ready pods, so nodes find each other while forming.
            settings["discovery.seed_hosts"] = [f"{headless}.{namespace}.svc"]
            if group.master_eligible and initial_masters:
                settings[INITIAL_MASTER_NODES] = list(initial_masters)
        groups.append(
            GroupPlan(
                statefulset=statefulset,
                group=group.name,
                replicas=group.count,
                memory_bytes=group.memory,
                heap_bytes=group.heap_bytes,
                storage_bytes=group.storage,
                settings=settings,
                pods=pods,
            )
        )
        certificates += [
            PodCertificate(pod, _pod_dns_names(pod, headless, http, namespace), (*LOOPBACK_IPS, *fixed_ips))
            for pod in pods
        ]
    kibana_ca = f"{KIBANA_CONFIG_DIR}/certs/ca.crt"
    return KubernetesPlan(
        cluster_name=cluster.name,
        version=cluster.version,
        kibana_version=config.kibana_version,
        namespace=namespace,
        headless_service=headless,
        http_service=http,
        kibana_service=f"{cluster.name}-kibana",
        groups=tuple(groups),
        certificates=tuple(certificates),
        kibana_replicas=config.kibana.replicas,
        kibana_memory_bytes=config.kibana.memory,
        kibana_settings=kibana_settings([f"https://{http}.{namespace}.svc:{HTTP_PORT}"], kibana_ca),
        settings=k8s,
        cert_validity_hours=config.security.cert_validity_days * 24,
        tls=tls,
        lifecycle=lifecycle,
        access=access or ClusterAccess(k8s.context),
    )


def _pod_dns_names(pod: str, headless: str, http: str, namespace: str) -> tuple[str, ...]:
    names = [pod, "localhost"]
    for host in (f"{pod}.{headless}", http):
        names += [host, f"{host}.{namespace}.svc", f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"]
    return tuple(names)
