"""What the engine and each provider do with a changed resource: replace it, update it in place, and
whether the update restarts what it runs or adds or removes Elasticsearch nodes. Field paths are the
render's: `inputs.` and the engine's camelCase names; `[…]` stands for any list item.

Sources (pulumi-docker 5.x bridges kreuzwerker/terraform-provider-docker v4.1+; a Terraform attribute
with `ForceNew` replaces the resource, any other is updated in place):
- container: kreuzwerker/terraform-provider-docker `internal/provider/resource_docker_container.go`
  (schema) and `resource_docker_container_funcs.go` (`resourceDockerContainerUpdate` calls `docker
  update` for restart, memory, CPU and block-I/O limits, which a running container takes without a
  restart; the other in-place attributes are the provider's own settings, or stored without reaching
  the container);
- swarm service: same repository, `resource_docker_service.go` (replaced on `name`, `auth`, `mode`,
  container hosts and sysctls, task networks); any other change is a service update, and swarmkit
  restarts a task when its task spec or endpoint spec changed (moby/swarmkit
  `manager/orchestrator/task.go`, `IsTaskDirty`), not for labels or update settings;
- Kubernetes: pulumi/pulumi-kubernetes `provider/pkg/provider/diff.go` (`forceNewProperties`: the fields
  whose change replaces an object, `.metadata.name` and `.metadata.namespace` for every kind); the
  StatefulSet controller restarts pods on a pod-template change (with `updateStrategy: OnDelete` it
  leaves that to the program's roll, one pod at a time) and removes the highest ordinals on scale-in;
- pulumi-tls and pulumi-random: every input replaces (`RequiresReplace`) but `earlyRenewalHours`;
- the engine: a new provider reference or a `replaceOnChanges` match replaces; `ignoreChanges` paths
  never reach the provider.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elastic_policy.workloads import CONTAINER, STATEFULSET, SWARM_SERVICE, containers, get_path

DEPLOYMENT = "kubernetes:apps/v1:Deployment"

# fmt: off
# Container attributes without ForceNew. Applied live by `docker update`:
CONTAINER_LIVE = ["restart", "maxRetryCount", "cpuShares", "cpuSet", "memory", "memoryReservation", "memorySwap",
                  "deviceReadBps", "deviceReadIops", "deviceWriteBps", "deviceWriteIops"]
# The provider's own settings (how it creates, waits for and removes the container):
CONTAINER_PROVIDER_SETTINGS = ["rm", "start", "wait", "waitTimeout", "attach", "logs", "mustRun", "removeVolumes",
                               "destroyGraceSeconds", "containerReadRefreshTimeoutMilliseconds"]
# In place, but resourceDockerContainerUpdate never applies them: the running container keeps the old value.
CONTAINER_STORED_ONLY = ["healthcheck", "tmpfs", "init", "cpuPeriod", "cpuQuota"]

SERVICE_REPLACES = ["name", "auth", "mode", "taskSpec.containerSpec.hosts", "taskSpec.containerSpec.sysctl",
                    "taskSpec.networksAdvanceds"]
SERVICE_REPLICAS = "mode.replicated.replicas"
SERVICE_TASK = ["taskSpec", "endpointSpec"]

# (group, version, kind) → input paths whose change replaces the object (pulumi-kubernetes forceNew), for
# the kinds this program creates; the others replace only on a new name or namespace.
_SELECTOR = ["spec.selector", "spec.selector.matchExpressions", "spec.selector.matchLabels"]
KUBERNETES_REPLACES: dict[tuple[str, str, str], list[str]] = {
    ("apps", "v1", "StatefulSet"): ["spec.podManagementPolicy", "spec.revisionHistoryLimit", "spec.serviceName",
                                    "spec.volumeClaimTemplates", *_SELECTOR],
    ("apps", "v1", "Deployment"): _SELECTOR,
    ("core", "v1", "ConfigMap"): ["binaryData", "data"],
    ("core", "v1", "Secret"): ["type", "stringData", "data"],
    ("core", "v1", "Service"): ["spec.clusterIP"],
    ("batch", "v1", "Job"): ["spec.completions", "spec.parallelism", "spec.template", *_SELECTOR],
}
KUBERNETES_METADATA_REPLACES = ["metadata.name", "metadata.namespace"]
# fmt: on

# Types whose every input replaces, but these (the providers' in-place attributes).
REPLACE_ALL_BUT: dict[str, list[str]] = {
    "docker:index/volume:Volume": [],
    "docker:index/network:Network": [],
    "docker:index/secret:Secret": [],
    "docker:index/serviceConfig:ServiceConfig": [],
    "docker:index/remoteImage:RemoteImage": ["keepLocally", "forceRemove"],
    "random:index/randomPassword:RandomPassword": [],
    "tls:index/privateKey:PrivateKey": [],
    "tls:index/certRequest:CertRequest": [],
    "tls:index/selfSignedCert:SelfSignedCert": ["earlyRenewalHours"],
    "tls:index/locallySignedCert:LocallySignedCert": ["earlyRenewalHours"],
}


@dataclass(frozen=True)
class Action:
    """`label`: create, delete, replace, update, or update with what it does to the workload in brackets.
    `node_impact`: what happens to running Elasticsearch nodes (None: every node keeps running)."""

    label: str
    node_impact: str | None = None
    note: str | None = None


def _normal(path: str) -> str:
    """A path with list positions and keys as `[*]`: rules name fields, not items."""
    return re.sub(r"\[[^\]]*\]", "[*]", path)


def under(path: str, prefixes: Iterable[str]) -> bool:
    """True when `path` is one of `prefixes` (a path relative to `inputs.`, `*` for any) or inside one."""
    path = _normal(path)
    for prefix in prefixes:
        full = "inputs" if prefix == "*" else "inputs." + _normal(prefix.lstrip("."))
        if path == full or path.startswith((full + ".", full + "[")):
            return True
    return False


def fields_of(paths: Iterable[str]) -> list[str]:
    """The paths once each, every list item as `[*]`: which fields, not which items (the details say)."""
    return list(dict.fromkeys(_normal(path) for path in paths))


def summary(paths: Sequence[str], shown: int = 4) -> str:
    unique = fields_of(paths)
    more = f" and {len(unique) - shown} more" if len(unique) > shown else ""
    return ", ".join(unique[:shown]) + more


def runs_elasticsearch(document: dict[str, Any] | None) -> bool:
    document = document or {}
    return any(c.runs_elasticsearch for c in containers(str(document.get("type")), document.get("inputs") or {}))


def ignored_by(document: dict[str, Any] | None) -> list[str]:
    return list(get_path(document, "options", "ignoreChanges") or [])


def added_or_removed(kind: str, document: dict[str, Any]) -> Action:
    if kind == "added":
        return Action("create")
    if not runs_elasticsearch(document):
        return Action("delete")
    if document.get("type") == STATEFULSET:
        names = ", ".join(pod_names(document, 0, _replicas(document)))
        return Action("delete", f"deleted: its nodes {names} leave the cluster at once")
    return Action("delete", "deleted: its node leaves the cluster")


def changed(
    before: dict[str, Any], after: dict[str, Any], paths: list[str], provider: Mapping[str, Any] | None = None
) -> Action:
    """What the engine does with the resource when the fields at `paths` change (ignored ones taken out);
    `provider`: the inputs of its explicit provider (its settings), if it has one."""
    es = runs_elasticsearch(before)
    inputs = [p for p in paths if p.startswith("inputs.")]
    if "provider" in paths:
        return _replaced(after, es, ["provider"])
    if forced := [p for p in inputs if under(p, get_path(after, "options", "replaceOnChanges") or [])]:
        return _replaced(after, es, forced, "replaceOnChanges")
    if not inputs:
        return Action("update")
    type_ = str(after.get("type"))
    if type_ == CONTAINER:
        return _container(after, es, inputs)
    if type_ == SWARM_SERVICE:
        return _service(before, after, es, inputs)
    if type_.startswith("kubernetes:"):
        return _kubernetes(before, after, es, inputs, provider or {})
    if type_ in REPLACE_ALL_BUT and (replacing := [p for p in inputs if not under(p, REPLACE_ALL_BUT[type_])]):
        return _replaced(after, es, replacing)
    return Action("update")


def _replaced(after: dict[str, Any], es: bool, paths: list[str], why: str = "") -> Action:
    because = f"{why}: {summary(paths)}" if why else summary(paths)
    if not es:
        return Action("replace", note=f"replaced for {because}")
    if after.get("type") == STATEFULSET:
        impact = f"replaced: every pod stops at once ({because})"
    elif after.get("type") == SWARM_SERVICE:
        impact = f"replaced: the service and its task are recreated ({because})"
    else:
        impact = f"replaced: the node's container is recreated ({because})"
    return Action("replace", impact)


def _container(after: dict[str, Any], es: bool, inputs: list[str]) -> Action:
    in_place = CONTAINER_LIVE + CONTAINER_PROVIDER_SETTINGS + CONTAINER_STORED_ONLY
    if replacing := [p for p in inputs if not under(p, in_place)]:
        return _replaced(after, es, replacing)
    stored = [p for p in inputs if under(p, CONTAINER_STORED_ONLY)]
    note = f"the provider stores {summary(stored)} without changing the running container" if stored else None
    return Action("update", note=note)


def _service(before: dict[str, Any], after: dict[str, Any], es: bool, inputs: list[str]) -> Action:
    if replacing := [p for p in inputs if under(p, SERVICE_REPLACES) and not under(p, [SERVICE_REPLICAS])]:
        return _replaced(after, es, replacing)
    task = [p for p in inputs if under(p, SERVICE_TASK)]
    old, new = (_number(get_path(d, "inputs", "mode", "replicated", "replicas"), 1) for d in (before, after))
    if not es:
        effects = [f"scales {old} → {new}"] if new != old else []
        return _update([*effects, *(["restarts task"] if task else [])])
    name = str(get_path(after, "inputs", "name") or after.get("name"))
    effects, impact = [], []
    if new < old:
        gone = f"node {name}" if new == 0 else f"{old - new} of its {old} nodes"
        effects.append(f"removes {gone}")
        impact.append(f"removes {gone} (replicas {old} → {new})")
    if task and new > 0:
        effects.append("restarts node")
        impact.append(f"task restarts (task-spec change: {summary(task)})")
    if new > old:
        effects.append(f"adds nodes: replicas {old} → {new}")
    return _update(effects, "; ".join(impact) or None)


# A provider with these settings updates a Secret's or ConfigMap's data in place, unless the object is
# `immutable` (pulumi-kubernetes provider/pkg/provider/diff.go forceNewProperties).
MUTABLE_SETTING = {"Secret": "enableSecretMutable", "ConfigMap": "enableConfigMapMutable"}


def _kubernetes(
    before: dict[str, Any], after: dict[str, Any], es: bool, inputs: list[str], provider: Mapping[str, Any]
) -> Action:
    group_version, _, kind = str(after.get("type")).removeprefix("kubernetes:").partition(":")
    group, _, version = group_version.rpartition("/")
    replaces = KUBERNETES_METADATA_REPLACES + KUBERNETES_REPLACES.get((group or "core", version, kind), [])
    mutable = kind in MUTABLE_SETTING and str(provider.get(MUTABLE_SETTING[kind])).lower() == "true"
    if mutable and get_path(after, "inputs", "immutable") is not True:
        # A Secret's `type` stays forceNew under enableSecretMutable.
        replaces = KUBERNETES_METADATA_REPLACES + (["type"] if kind == "Secret" else [])
    if replacing := [p for p in inputs if under(p, replaces)]:
        return _replaced(after, es, replacing)
    if after.get("type") not in (STATEFULSET, DEPLOYMENT):
        return Action("update")
    template = [p for p in inputs if under(p, ["spec.template"])]
    old, new = _replicas(before), _replicas(after)
    if not es:
        effects = [f"scales {old} → {new}"] if new != old else []
        return _update([*effects, *(["restarts pods"] if template else [])])
    effects, impact = [], []
    if new < old:
        gone = ", ".join(pod_names(after, new, old))
        effects.append(f"removes nodes {gone}")
        impact.append(f"removes nodes {gone} (replicas {old} → {new})")
    if template and new > 0:
        on_delete = get_path(after, "inputs", "spec", "updateStrategy", "type") == "OnDelete"
        how = "pods restart one at a time (OnDelete)" if on_delete else "rolling restart of every pod"
        effects.append("restarts nodes")
        impact.append(f"{how} (pod-template change: {summary(template)})")
    if new > old:
        effects.append(f"adds nodes {', '.join(pod_names(after, old, new))}")
    return _update(effects, "; ".join(impact) or None)


def _update(effects: list[str], node_impact: str | None = None) -> Action:
    return Action(f"update ({'; '.join(effects)})" if effects else "update", node_impact)


def pod_names(document: dict[str, Any], first: int, end: int) -> list[str]:
    """The StatefulSet's pods of ordinals first … end-1 (`<name>-<ordinal>`; scale-in removes the highest)."""
    name = get_path(document, "inputs", "metadata", "name") or document.get("name")
    return [f"{name}-{ordinal}" for ordinal in range(first, end)]


def _replicas(document: dict[str, Any] | None) -> int:
    return _number(get_path(document, "inputs", "spec", "replicas"), 1)  # Kubernetes' default


def _number(value: Any, default: int) -> int:
    return default if value is None else int(value)
