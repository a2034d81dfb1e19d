"""Compare two renders of a stack: resources created, deleted and changed, the changed fields, what the
engine and providers do with each change (`review/actions.py`), and which Elasticsearch nodes it
replaces, restarts or removes.

`diff_stack` is a pure function of the two lists of documents (as `documents.load` gives them).
Lists compare as the engine reads them: the options' lists (`dependsOn`, `ignoreChanges`, …) and a
container's `envs` are sets, whose items are added or removed; a list of objects that each carry a
distinct key (`name`, `file`, `mountPath`, …) pairs its items by that key (`uploads[file=/x.yml]`),
so an insertion does not shift every later item; other lists pair by position.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from elastic_policy.workloads import CONTAINER, SWARM_SERVICE
from review import actions

# Lists whose order means nothing to the engine or the provider: the `TypeSet` attributes of
# kreuzwerker/terraform-provider-docker (resource_docker_container.go, resource_docker_service.go), which
# pulumi-docker bridges, and the engine's option lists.
SET_LISTS: dict[str | None, tuple[str, ...]] = {
    None: ("options.dependsOn", "options.ignoreChanges", "options.replaceOnChanges", "options.aliases"),
    CONTAINER: tuple(
        f"inputs.{name}"
        for name in (
            "envs",
            "uploads",
            "volumes",
            "labels",
            "networksAdvanced",
            "ulimits",
            "hosts",
            "mounts",
            "dns",
            "dnsOpts",
            "dnsSearches",
            "devices",
            "capabilities.adds",
            "capabilities.drops",
        )
    ),
    SWARM_SERVICE: tuple(
        f"inputs.{name}"
        for name in (
            "labels",
            "taskSpec.containerSpec.configs",
            "taskSpec.containerSpec.secrets",
            "taskSpec.containerSpec.mounts",
            "taskSpec.containerSpec.labels",
            "taskSpec.containerSpec.hosts",
            "taskSpec.placement.constraints",
            "taskSpec.networksAdvanceds",
        )
    ),
}
# Fields that identify an item of a list of objects, tried in this order.
ITEM_KEYS = ("name", "file", "fileName", "containerPath", "mountPath", "target", "label", "key")


@dataclass(frozen=True)
class FieldChange:
    """A value at `path` before and after (MISSING where absent); for a set, one item added or removed."""

    path: str
    before: Any
    after: Any
    ignored: bool = False  # under the resource's ignoreChanges: the provider never sees it


@dataclass
class ResourceChange:
    kind: str  # added, removed or changed
    urn: str
    type: str
    name: str
    fields: list[FieldChange] = field(default_factory=list)
    action: str = ""  # create, delete, replace, update or update (what it does)
    es_node_impact: str | None = None
    note: str | None = None


@dataclass
class StackDiff:
    stack: str
    changes: list[ResourceChange] = field(default_factory=list)
    outputs: list[FieldChange] = field(default_factory=list)
    base_error: str | None = None
    head_error: str | None = None

    def es_node_warnings(self) -> list[ResourceChange]:
        return [change for change in self.changes if change.es_node_impact]

    def count(self, action: str) -> int:
        """Changes whose action is `action` (`update` counts every kind of update)."""
        return sum(1 for change in self.changes if change.action.split(" (")[0] == action)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


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


def compare(before: Any, after: Any, path: str, sets: tuple[str, ...] = ()) -> list[FieldChange]:
    """The changes from `before` to `after` (either may be MISSING), leaf by leaf."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            change
            for key in sorted(before.keys() | after.keys(), key=str)
            for change in compare(before.get(key, MISSING), after.get(key, MISSING), f"{path}.{key}", sets)
        ]
    if isinstance(before, list) and isinstance(after, list):
        return _compare_lists(before, after, path, sets)
    if before is MISSING and isinstance(after, (dict, list)) and after:
        return [FieldChange(p, MISSING, v) for p, v in leaves(after, path)]
    if after is MISSING and isinstance(before, (dict, list)) and before:
        return [FieldChange(p, v, MISSING) for p, v in leaves(before, path)]
    return [FieldChange(path, before, after)]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _compare_lists(before: list[Any], after: list[Any], path: str, sets: tuple[str, ...]) -> list[FieldChange]:
    unordered = path in sets
    if unordered and not _item_key(before, after):
        old, new = {_canonical(v): v for v in before}, {_canonical(v): v for v in after}
        return [
            *(FieldChange(path, old[key], MISSING) for key in sorted(old.keys() - new.keys())),
            *(FieldChange(path, MISSING, new[key]) for key in sorted(new.keys() - old.keys())),
        ]
    if key := _item_key(before, after):
        old_items = {str(item[key]): item for item in before}
        new_items = {str(item[key]): item for item in after}
        changes = [
            change
            for name in [*old_items, *(n for n in new_items if n not in old_items)]
            for change in compare(
                old_items.get(name, MISSING), new_items.get(name, MISSING), f"{path}[{key}={name}]", sets
            )
        ]
        shared = [n for n in old_items if n in new_items]
        if not unordered and shared != [n for n in new_items if n in old_items]:  # same items, another order
            changes.append(FieldChange(f"{path} (order of {key})", shared, [n for n in new_items if n in old_items]))
        return changes
    return [
        change
        for index in range(max(len(before), len(after)))
        for change in compare(
            before[index] if index < len(before) else MISSING,
            after[index] if index < len(after) else MISSING,
            f"{path}[{index}]",
            sets,
        )
    ]


def _item_key(*lists: list[Any]) -> str | None:
    """The first of ITEM_KEYS that every item of both lists has, distinct within each list."""
    items = [item for group in lists for item in group]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in ITEM_KEYS:
        if all(isinstance(item.get(key), (str, int)) for item in items) and all(
            len({str(item[key]) for item in group}) == len(group) for group in lists
        ):
            return key
    return None


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """The changed fields of a resource; those under its (new) ignoreChanges marked ignored."""
    sets = SET_LISTS[None] + SET_LISTS.get(str(after.get("type")), ())
    fields = [
        change
        for key in ("provider", "options", "inputs")
        for change in compare(before.get(key, MISSING), after.get(key, MISSING), key, sets)
    ]
    ignored = actions.ignored_by(after)
    return [
        FieldChange(f.path, f.before, f.after, ignored=True) if ignored and actions.under(f.path, ignored) else f
        for f in fields
    ]


def resource_change(
    urn: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    providers: Mapping[str, dict[str, Any]] | None = None,
) -> ResourceChange | None:
    """The change of one resource (None when nothing changed), with what the engine does about it
    (`providers`: each explicit provider's inputs by URN)."""
    doc = after or before or {}
    if before is None or after is None:
        kind = "added" if before is None else "removed"
        action = actions.added_or_removed(kind, doc)
        return ResourceChange(kind, urn, doc["type"], doc["name"], [], action.label, action.node_impact)
    fields = changed_fields(before, after)
    if not fields:
        return None
    effective = [f.path for f in fields if not f.ignored]
    provider = (providers or {}).get(str(after.get("provider") or "").rsplit("::", 1)[0])
    action = (
        actions.changed(before, after, effective, provider) if effective else actions.Action("none (ignoreChanges)")
    )
    return ResourceChange(
        "changed", urn, doc["type"], doc["name"], fields, action.label, action.node_impact, action.note
    )


def diff_stack(stack: str, base: list[dict[str, Any]], head: list[dict[str, Any]]) -> StackDiff:
    """The change from the `base` render of a stack to the `head` render."""
    result = StackDiff(stack)
    old = {doc["urn"]: doc for doc in base if "urn" in doc}
    new = {doc["urn"]: doc for doc in head if "urn" in doc}
    providers = {
        urn: doc.get("inputs") or {} for urn, doc in new.items() if str(doc.get("type")).startswith("pulumi:providers:")
    }
    for urn in sorted(old.keys() | new.keys()):
        if change := resource_change(urn, old.get(urn), new.get(urn), providers):
            result.changes.append(change)
    result.outputs = compare(_outputs(base), _outputs(head), "outputs")
    return result


def _outputs(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next((dict(d.get("outputs") or {}) for d in docs if "urn" not in d), {})
