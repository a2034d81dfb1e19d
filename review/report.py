"""The diff of every stack as Markdown for a pull-request comment: counts, a warning line per
Elasticsearch node a change replaces or restarts, then the changed fields of each resource."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from review.diff import MISSING, FieldChange, ResourceChange, StackDiff

MARKS = {"added": "+", "removed": "-", "changed": "~"}
VALUE_WIDTH = 80


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
    lines.append(
        f"{diff.count('added')} to add, {diff.count('changed')} to change, {diff.count('removed')} to remove; "
        f"Elasticsearch workloads replaced or restarted: {len(diff.es_node_warnings())}."
    )
    lines.append("")
    for change in diff.es_node_warnings():
        impact = f"`{change.name}` ({change.type}) {change.es_node_impact}"
        lines.append(f"> :warning: **Elasticsearch node restart:** {impact}")
    if diff.es_node_warnings():
        lines.append("")
    lines += ["| | resource | type | changed fields |", "|---|---|---|---|"]
    for change in diff.changes:
        fields = ", ".join(f"`{f.path}`" for f in change.fields[:6])
        if len(change.fields) > 6:
            fields += f" and {len(change.fields) - 6} more"
        lines.append(f"| {MARKS[change.kind]} | `{change.name}` | `{change.type}` | {fields} |")
    lines.append("")
    details = [line for change in diff.changes if change.fields for line in _field_details(change)]
    details += _output_details(diff.outputs)
    if details:
        lines += ["<details><summary>Changed fields</summary>", "", "```diff", *details, "```", "</details>", ""]
    return lines


def _field_details(change: ResourceChange) -> list[str]:
    lines = [f"@@ {change.name} ({change.type}) @@"]
    for field_change in change.fields:
        lines += _value_lines(field_change)
    return lines


def _output_details(outputs: list[FieldChange]) -> list[str]:
    if not outputs:
        return []
    return ["@@ stack outputs @@", *(line for change in outputs for line in _value_lines(change))]


def _value_lines(change: FieldChange) -> list[str]:
    before, after = change.before, change.after
    if isinstance(before, str) and isinstance(after, str) and ("\n" in before or "\n" in after):
        body = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=1)
        changed = [line for line in list(body)[2:] if line and line[0] in "+- "]  # no file or hunk headers
        return [f"  {change.path}:", *(f"{line[0]}     {line[1:]}" for line in changed)]
    lines = []
    if before is not MISSING:
        lines.append(f"- {change.path}: {_short(before)}")
    if after is not MISSING:
        lines.append(f"+ {change.path}: {_short(after)}")
    return lines


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n")
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"
