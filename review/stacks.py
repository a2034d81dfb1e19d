"""A Pulumi project's stacks as files: project name, stack names, and each stack's config as Pulumi
would hand it to the program (the project's `Pulumi.yaml` defaults under the stack file's values).

Encrypted values (`secure: v1:…`) cannot be read offline; each becomes a placeholder the program
sees as a secret. The placeholder follows the ciphertext, so a password set anew (`pulumi config set
--secret`) is a new placeholder and shows in a diff as a changed secret digest, never as a value.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml


class StackFileError(Exception):
    """A project or stack file that is not valid YAML: its message names the file, line and column."""


class UnknownStackError(Exception):
    """A stack named on the command line that has no `Pulumi.<stack>.yaml`: the message lists those there are."""

    def __init__(self, unknown: list[str], known: list[str], where: Path) -> None:
        listed = ", ".join(known) or "none"
        super().__init__(f"no stack file for {', '.join(unknown)} in {where}; the stacks there are: {listed}")


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


# Long enough for every password rule (at least 6 characters); never a real secret. Each encrypted
# value gets this prefix and a digest of its ciphertext (public: it is in the stack file).
SECRET_PLACEHOLDER = "offline-render-placeholder"


def secret_placeholder(ciphertext: str) -> str:
    return f"{SECRET_PLACEHOLDER}-{hashlib.sha256(ciphertext.encode()).hexdigest()[:12]}"


def project_name(root: Path) -> str:
    return str(read_yaml(root / "Pulumi.yaml")["name"])


def stack_names(root: Path) -> list[str]:
    return sorted(path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in root.glob("Pulumi.*.yaml"))


def check_stacks(root: Path, wanted: list[str], known: list[str] | None = None) -> None:
    """Raise UnknownStackError when a wanted stack is not among `known` (default: the stack files at `root`)."""
    there = stack_names(root) if known is None else known
    if unknown := [stack for stack in wanted if stack not in there]:
        raise UnknownStackError(unknown, there, root)


def full_key(key: str, project: str | None) -> str:
    """A config key as the engine names it: `key` without a namespace is the project's (`<project>:key`)."""
    return key if ":" in key or project is None else f"{project}:{key}"


def project_defaults(root: Path) -> dict[str, Any]:
    """The `config:` block of `Pulumi.yaml` as values for every stack (Pulumi 3.44+, "Project file reference"):
    `key: value` is a value; `key: {value: …}` too (objects must be written so); `key: {type, default, …}`
    declares the key, and its `default` is the value when the stack sets none."""
    document = read_yaml(root / "Pulumi.yaml")
    project = str(document.get("name"))
    values: dict[str, Any] = {}
    for key, declared in (document.get("config") or {}).items():
        if isinstance(declared, dict):
            if "value" in declared:
                values[full_key(str(key), project)] = declared["value"]
            elif "default" in declared:
                values[full_key(str(key), project)] = declared["default"]
        else:
            values[full_key(str(key), project)] = declared
    return values


def read_stack_file(path: Path, project: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The stack's config (full `project:key` names when `project` is given) and the keys holding a secret."""
    document = read_yaml(path)
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        plain, had_secret = _without_secure_values(value)
        config[full_key(str(key), project)] = plain
        if had_secret:
            secret_keys.append(full_key(str(key), project))
    return config, secret_keys


def stack_config(root: Path, stack: str) -> tuple[dict[str, Any], list[str]]:
    """What the engine gives the program of `stack`: the project's defaults, each key the stack file sets
    replacing the default whole (as `pulumi config` shows it), and the keys holding a secret."""
    project = project_name(root)
    values, secret_keys = read_stack_file(root / f"Pulumi.{stack}.yaml", project)
    return {**project_defaults(root), **values}, secret_keys


def _without_secure_values(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return secret_placeholder(str(value["secure"])), True
        items = {key: _without_secure_values(item) for key, item in value.items()}
        return {key: plain for key, (plain, _) in items.items()}, any(secret for _, secret in items.values())
    if isinstance(value, list):
        entries = [_without_secure_values(item) for item in value]
        return [plain for plain, _ in entries], any(secret for _, secret in entries)
    return value, False
