"""A render as YAML: one document per resource, sorted by URN, numbers in their natural type, and each
secret shown as `[secret:<digest>]`.

The same tree always gives the same bytes, so two renders can be compared with any diff tool, and a
secret that changes (a rotated password, a new CA in a Kubernetes Secret) changes its digest.

The digest: the first 12 hex digits (48 bits) of SHA-256 over a fixed label and the value's canonical
JSON. It depends on the value only, so a base and a head render (two processes) agree on an unchanged
secret. What it reveals: whether two secrets are equal, and a way to test a guessed value. For what
the program generates (keys, certificates, random passwords) guessing is hopeless. A password a person
chose could be found from a word list, and truncating the digest does not stop that (48 bits still
confirm a guess); what does is that no real password reaches a render: encrypted stack values become
placeholders offline (`review/stacks.py`), and mock providers make up every generated value. The
digest is cut to 12 digits to keep the mark short; a false match between two different secrets is a
chance in 2^48. A mapping held as one secret (a Kubernetes Secret's `stringData`) keeps its keys, each
value digested alone, so a diff names the entry that changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

from review.mockrun import STACK_TYPE, Registration, Render, replace_secrets

SECRET_MARK_FORMAT = "[secret:{}]"
SECRET_MARK = re.compile(r"^\[secret:[0-9a-f]{12}\]$")
# Names what is hashed, so a digest here matches no plain SHA-256 of the same text elsewhere.
DIGEST_LABEL = b"escluster review secret v1\n"


def natural(value: Any) -> Any:
    """`value` with integral floats as ints: the engine carries every number as a double."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: natural(item) for key, item in value.items()}
    if isinstance(value, list):
        return [natural(item) for item in value]
    return value


def secret_digest(value: Any) -> str:
    canonical = json.dumps(natural(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(DIGEST_LABEL + canonical.encode()).hexdigest()[:12]


def _plain(value: Any) -> Any:
    """A secret's value with any secret inside it unwrapped too."""
    return replace_secrets(value, _plain)


def secret_mark(value: Any) -> Any:
    if isinstance(value, dict) and value:
        return {key: secret_mark(value[key]) for key in sorted(value)}
    return SECRET_MARK_FORMAT.format(secret_digest(value))


def masked(value: Any) -> Any:
    """`value` with every secret replaced by its mark, mappings sorted by key, numbers natural."""
    return natural(replace_secrets(value, lambda secret: secret_mark(_plain(secret))))


def resource_document(resource: Registration) -> dict[str, Any]:
    # Identity first, then options, then inputs: the order a reviewer reads in. Lists of options are
    # sets to the engine: sorted, so their order never shows as a change.
    options: dict[str, Any] = {
        "deleteBeforeReplace": resource.delete_before_replace,
        "dependsOn": sorted(resource.dependencies),
        "ignoreChanges": sorted(resource.ignore_changes),
        "protect": resource.protect,
        "replaceOnChanges": sorted(resource.replace_on_changes),
        "retainOnDelete": resource.retain_on_delete,
    }
    return {
        "urn": resource.urn,
        "type": resource.type,
        "name": resource.name,
        "parent": resource.parent or None,
        "custom": resource.custom,
        "provider": resource.provider or None,
        "options": options,
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
