"""The diff of every stack as Markdown for a pull-request comment: counts, a warning line per
Elasticsearch workload a change replaces, restarts or scales in, a table of resources with what the
engine does to each, then every changed field with its key path, old and new value.

Values print in their natural type: numbers as the program wrote them (2048, not 2048.0), `true`,
`null`, text as is (quoted only where it would read as another type), secrets as their digest.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

from review.actions import fields_of
from review.diff import MISSING, FieldChange, ResourceChange, StackDiff
from review.documents import SECRET_MARK, natural

MARKS = {"create": "+", "delete": "-", "replace": "-/+"}
VALUE_WIDTH = 120
FIELDS_SHOWN = 6
URN = re.compile(r"^urn:pulumi:[^:]*::[^:]*::(?:[^$]*\$)*(?P<type>[^$]+?)::(?P<name>.*)$")


def markdown(title: str, diffs: Iterable[StackDiff]) -> str:
    lines = [f"## {title}", ""]
    for diff in diffs:
        lines += _stack_section(diff)
    return "\n".join(lines).rstrip() + "\n"


def _stack_section(diff: StackDiff) -> list[str]:
    lines = [f"### Stack `{diff.stack}`", ""]
    if diff.base_error or diff.head_error:
        for side, error in (("base", diff.base_error), ("this change", diff.head_error)):
            if error:
                lines += [f":x: **Render failed at {side}:**", "", "```", error.strip(), "```", ""]
        return lines
    if not diff.changes and not diff.outputs:
        return [*lines, "No changes.", ""]
    counts = ", ".join(f"{diff.count(action)} to {action}" for action in ("create", "update", "replace", "delete"))
    lines += [f"{counts}; Elasticsearch workloads affected: {len(diff.es_node_warnings())}.", ""]
    for change in diff.es_node_warnings():
        lines.append(f"> :warning: **Elasticsearch nodes:** `{change.name}` ({change.type}) {change.es_node_impact}")
    if diff.es_node_warnings():
        lines.append("")
    if diff.changes:
        lines += ["| | resource | type | action | changed fields |", "|---|---|---|---|---|"]
        lines += [_table_row(change) for change in diff.changes]
        lines.append("")
    details = [line for change in diff.changes if change.fields for line in _field_details(change)]
    details += _output_details(diff.outputs)
    if details:
        lines += ["<details><summary>Changed fields</summary>", "", "```diff", *details, "```", "</details>", ""]
    return lines


def _table_row(change: ResourceChange) -> str:
    fields = fields_of(f.path for f in change.fields)
    listed = ", ".join(f"`{path}`" for path in fields[:FIELDS_SHOWN])
    if len(fields) > FIELDS_SHOWN:
        listed += f" and {len(fields) - FIELDS_SHOWN} more"
    mark = MARKS.get(change.action, "~")
    return f"| {mark} | `{change.name}` | `{change.type}` | {change.action} | {listed} |"


def _field_details(change: ResourceChange) -> list[str]:
    lines = [f"@@ {change.name} ({change.type}): {change.action} @@"]
    if change.note:
        lines.append(f"  # {change.note}")
    for field_change in change.fields:
        lines += value_lines(field_change)
    return lines


def _output_details(outputs: list[FieldChange]) -> list[str]:
    if not outputs:
        return []
    return ["@@ stack outputs @@", *(line for change in outputs for line in value_lines(change))]


def value_lines(change: FieldChange) -> list[str]:
    """The change as diff lines: `- path: old` and `+ path: new`, or a line diff of multi-line text."""
    before, after = change.before, change.after
    ignored = "  (ignoreChanges: not applied)" if change.ignored else ""
    texts = [v for v in (before, after) if v is not MISSING]
    if all(isinstance(v, str) for v in texts) and any("\n" in v for v in texts):
        old = before.splitlines() if before is not MISSING else []
        new = after.splitlines() if after is not MISSING else []
        body = list(difflib.unified_diff(old, new, lineterm="", n=1))[2:]  # no file headers
        changed = [line for line in body if line and line[0] in "+- "]
        return [f"  {change.path}:{ignored}", *(f"{line[0]}     {line[1:]}" for line in changed)]
    lines = []
    if before is not MISSING:
        lines.append(f"- {change.path}: {natural_text(before)}{ignored}")
    if after is not MISSING:
        lines.append(f"+ {change.path}: {natural_text(after)}{ignored}")
    return lines


def natural_text(value: Any) -> str:
    """One value as a reader expects it: YAML-like scalars, JSON for lists and mappings, URNs as `name (type)`."""
    value = natural(value)
    if isinstance(value, str):
        if SECRET_MARK.match(value):
            return value
        if match := URN.match(value):
            return _short(f"{match['name']} ({match['type']})")
        return _short(value if _reads_as_text(value) else json.dumps(value, ensure_ascii=False))
    if isinstance(value, (dict, list)):
        return _short(json.dumps(value, ensure_ascii=False, default=str))
    return _short(json.dumps(value, default=str))  # true, false, null and numbers


def _reads_as_text(text: str) -> bool:
    if not text or text != text.strip():
        return False
    try:
        return isinstance(yaml.safe_load(text), str)
    except yaml.YAMLError:
        return True


def _short(text: str) -> str:
    """At most VALUE_WIDTH characters, cut in the middle: both ends of a long value stay readable."""
    text = text.replace("\n", "\\n")
    if len(text) <= VALUE_WIDTH:
        return text
    keep = (VALUE_WIDTH - 1) // 2
    return text[:keep] + "…" + text[-keep:]
