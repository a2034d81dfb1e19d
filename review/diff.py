"""Compare two renders of a stack: resources added, removed and changed, the changed fields, and
which changes replace or restart an Elasticsearch node.

A workload runs an Elasticsearch node when it gets an `elasticsearch.yml` (read as the policy pack reads
it: a container upload, a swarm config file or a pod volume mount). What restarts it follows the
provider's rules:
- a Docker container is replaced on any input change (pulumi-docker recreates containers);
- a swarm service restarts its task when the task spec, mode, endpoint or name changes;
- a StatefulSet rolls every pod when its pod template changes, and is replaced (all pods at once)
  when an immutable field changes; fewer replicas remove nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from elastic_policy.workloads import CONTAINER, SWARM_SERVICE, containers, get_path

# Swarm service fields whose change restarts the task (the rest, like labels and update config, do not).
SWARM_TASK_FIELDS = ("inputs.taskSpec", "inputs.mode", "inputs.endpointSpec", "inputs.name", "provider")
# StatefulSet fields the API server will not update: a change replaces the StatefulSet.
STATEFULSET_IMMUTABLE = (
    "inputs.spec.selector",
    "inputs.spec.serviceName",
    "inputs.spec.volumeClaimTemplates",
    "inputs.spec.podManagementPolicy",
    "inputs.metadata.name",
    "inputs.metadata.namespace",
    "provider",
)


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass
class ResourceChange:
    kind: str  # added, removed or changed
    urn: str
    type: str
    name: str
    fields: list[FieldChange] = field(default_factory=list)
    es_node_impact: str | None = None


@dataclass
class StackDiff:
    stack: str
    changes: list[ResourceChange] = field(default_factory=list)
    outputs: list[FieldChange] = field(default_factory=list)
    base_error: str | None = None
    head_error: str | None = None

    def es_node_warnings(self) -> list[ResourceChange]:
        return [change for change in self.changes if change.es_node_impact]

    def count(self, kind: str) -> int:
        return sum(1 for change in self.changes if change.kind == kind)


MISSING = object()


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar under `value` with its path (dots for keys, [i] for list items); empty containers count."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    old = dict(leaves({key: before.get(key) for key in ("provider", "options", "inputs")}))
    new = dict(leaves({key: after.get(key) for key in ("provider", "options", "inputs")}))
    return [
        FieldChange(path, old.get(path, MISSING), new.get(path, MISSING))
        for path in sorted(old.keys() | new.keys())
        if old.get(path, MISSING) != new.get(path, MISSING)
    ]


def runs_elasticsearch(document: dict[str, Any]) -> bool:
    return any(c.runs_elasticsearch for c in containers(str(document.get("type")), document.get("inputs") or {}))


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith((p + ".", p + "[")) for p in prefixes)


def es_node_impact(change: ResourceChange, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str | None:
    """What the change does to a running Elasticsearch node, or None when it leaves every node running."""
    if change.kind == "added" or not runs_elasticsearch(before or {}):
        return None
    if change.kind == "removed":
        return "removed: its node leaves the cluster"
    paths = [f.path for f in change.fields]
    if change.type == CONTAINER:
        inputs = [p for p in paths if _under(p, ("inputs", "provider"))]
        return f"replaced (container input change: {_summary(inputs)})" if inputs else None
    if change.type == SWARM_SERVICE:
        task = [p for p in paths if _under(p, SWARM_TASK_FIELDS)]
        return f"task restarted (swarm task-spec change: {_summary(task)})" if task else None
    immutable = [p for p in paths if _under(p, STATEFULSET_IMMUTABLE)]
    if immutable:
        return f"replaced, every pod at once (immutable StatefulSet field: {_summary(immutable)})"
    template = [p for p in paths if _under(p, ("inputs.spec.template",))]
    if template:
        return f"rolling restart of every pod (pod-template change: {_summary(template)})"
    replicas_before, replicas_after = (_replicas(document) for document in (before, after))
    if replicas_after < replicas_before:
        return f"scaled in from {replicas_before} to {replicas_after} pods: nodes leave the cluster"
    return None


def _replicas(document: dict[str, Any] | None) -> int:
    replicas = get_path(document, "inputs", "spec", "replicas")
    return 1 if replicas is None else int(replicas)  # Kubernetes' default


def _summary(paths: list[str], shown: int = 4) -> str:
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(paths[:shown]) + more


def diff_stack(stack: str, base: list[dict[str, Any]], head: list[dict[str, Any]]) -> StackDiff:
    """The change from the `base` render of a stack to the `head` render (documents as `documents.load` gives)."""
    result = StackDiff(stack)
    old = {doc["urn"]: doc for doc in base if "urn" in doc}
    new = {doc["urn"]: doc for doc in head if "urn" in doc}
    for urn in sorted(old.keys() | new.keys()):
        before, after = old.get(urn), new.get(urn)
        doc = after or before or {}
        if before is None:
            change = ResourceChange("added", urn, doc["type"], doc["name"])
        elif after is None:
            change = ResourceChange("removed", urn, doc["type"], doc["name"])
        else:
            fields = changed_fields(before, after)
            if not fields:
                continue
            change = ResourceChange("changed", urn, doc["type"], doc["name"], fields)
        change.es_node_impact = es_node_impact(change, before, after)
        result.changes.append(change)
    result.outputs = _output_changes(base, head)
    return result


def _output_changes(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> list[FieldChange]:
    def outputs(docs: list[dict[str, Any]]) -> dict[str, Any]:
        return next((dict(d.get("outputs") or {}) for d in docs if "urn" not in d), {})

    old, new = outputs(base), outputs(head)
    return [
        FieldChange(key, old.get(key, MISSING), new.get(key, MISSING))
        for key in sorted(old.keys() | new.keys())
        if old.get(key, MISSING) != new.get(key, MISSING)
    ]
