"""A render as YAML: one document per resource, sorted by URN, secrets shown as `[secret]`.

The same tree always gives the same bytes, so two renders can be compared with any diff tool.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from review.mockrun import STACK_TYPE, Registration, Render, replace_secrets

SECRET_MARK = "[secret]"


def masked(value: Any) -> Any:
    """`value` with every secret replaced by the mark, and mappings sorted by key."""
    return replace_secrets(value, lambda _: SECRET_MARK)


def resource_document(resource: Registration) -> dict[str, Any]:
    # Identity first, then options, then inputs: the order a reviewer reads in.
    return {
        "urn": resource.urn,
        "type": resource.type,
        "name": resource.name,
        "parent": resource.parent or None,
        "custom": resource.custom,
        "provider": resource.provider or None,
        "options": {
            "deleteBeforeReplace": resource.delete_before_replace,
            "dependsOn": sorted(resource.dependencies),
            "protect": resource.protect,
            "retainOnDelete": resource.retain_on_delete,
        },
        "inputs": masked(resource.raw_inputs),
    }


def documents(render: Render) -> list[dict[str, Any]]:
    resources = sorted((resource_document(r) for r in render.resources), key=lambda d: str(d["urn"]))
    stack = {"type": STACK_TYPE, "name": render.stack, "outputs": masked(render.raw_outputs)}
    return [stack, *resources]


class _Dumper(yaml.SafeDumper):
    """Block style for text with line breaks (settings files, scripts, PEMs), so diffs read line by line."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and not any(line != line.rstrip() for line in text.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def dump(docs: Iterable[dict[str, Any]]) -> str:
    # Keys are sorted by `masked` and the document builders; width keeps long values on one line.
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def load(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]
