"""A Pulumi project's stacks as files: project name, stack names, and each stack's config.

Encrypted values (`secure: v1:…`) cannot be read offline; each becomes a placeholder the program
sees as a secret, so a render shows `[secret]` where the real value would go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class StackFileError(Exception):
    """A project or stack file that is not valid YAML: its message names the file, line and column."""


def read_yaml(path: Path) -> dict[str, Any]:
    """A Pulumi project or stack file as a mapping; a syntax error names the file, line and column."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark else path.name
        raise StackFileError(f"{where}: {error.problem or error.context}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError(f"{path.name}: the file is not a YAML mapping of keys to values")
    return document


# Long enough for every password rule (at least 6 characters); never a real secret.
SECRET_PLACEHOLDER = "offline-render-placeholder"


def project_name(root: Path) -> str:
    return str(read_yaml(root / "Pulumi.yaml")["name"])


def stack_names(root: Path) -> list[str]:
    return sorted(path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in root.glob("Pulumi.*.yaml"))


def read_stack_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The stack's config (full `project:key` names) and the keys holding a secret."""
    document = read_yaml(path)
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        plain, had_secret = _without_secure_values(value)
        config[key] = plain
        if had_secret:
            secret_keys.append(key)
    return config, secret_keys


def _without_secure_values(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        items = {key: _without_secure_values(item) for key, item in value.items()}
        return {key: plain for key, (plain, _) in items.items()}, any(secret for _, secret in items.values())
    if isinstance(value, list):
        entries = [_without_secure_values(item) for item in value]
        return [plain for plain, _ in entries], any(secret for _, secret in entries)
    return value, False
