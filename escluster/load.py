"""Read a stack's config from Pulumi and validate it: one readable error, before any resource exists."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pydantic
from pulumi.runtime import config as runtime_config

from escluster.config import StackConfig

SECRET_KEYS = ("security",)


class ConfigError(pulumi.RunError):
    """A bad stack config. Pulumi prints a RunError's message alone, without a traceback."""


def stack_config_values(project: str) -> tuple[dict[str, Any], set[str]]:
    """Every config value in the project's namespace, and the keys held as secrets."""
    prefix = f"{project}:"
    raw: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env())
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    for full_key, value in raw.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        values[key] = _decode(value)
        if runtime_config.is_config_secret(full_key) or full_key in secret_keys:
            secrets.add(key)
    return values, secrets


def _decode(value: Any) -> Any:
    # Structured config arrives as JSON text; plain values stay strings.
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def parse_stack_config(values: Mapping[str, Any], secret_keys: set[str], stack: str) -> StackConfig:
    try:
        config = StackConfig.model_validate(dict(values))
    except pydantic.ValidationError as error:
        raise ConfigError(format_errors(error, stack)) from None
    if config.security.elastic_password or config.security.kibana_system_password:
        for key in SECRET_KEYS:
            if key not in secret_keys:
                raise ConfigError(
                    f"Pulumi.{stack}.yaml: {key}: passwords must be stored encrypted; set them with "
                    f"`pulumi config set --secret --path {key}.elastic_password …`"
                )
    return config


def load_stack_config() -> StackConfig:
    values, secrets = stack_config_values(pulumi.get_project())
    config = parse_stack_config(values, secrets, pulumi.get_stack())
    for warning in config.warnings():
        pulumi.log.warn(f"Pulumi.{pulumi.get_stack()}.yaml: {warning}")
    return config


def format_errors(error: pydantic.ValidationError, stack: str) -> str:
    lines = [f"Pulumi.{stack}.yaml: invalid config"]
    for detail in error.errors(include_url=False, include_input=False):
        path = _key_path(detail["loc"])
        message = str(detail["msg"])
        if detail["type"] == "extra_forbidden":
            message = "unknown key"
        elif detail["type"] == "missing":
            message = "required key is missing"
        message = message.removeprefix("Value error, ")
        # Model-level checks name the field they judged: "heap: 3g is more than …".
        head, sep, rest = message.partition(": ")
        if sep and head.replace("_", "").replace(".", "").replace("[", "").replace("]", "").isalnum():
            path = f"{path}.{head}" if path else head
            message = rest
        lines.append(f"  {path or '(top level)'}: {message}")
    return "\n".join(lines)


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith(("function-", "tagged-union")):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path
