"""Read a stack's config from Pulumi and validate it: one readable error, before any resource exists."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pydantic
from pulumi.runtime import config as runtime_config

from escluster.changes import refused_changes
from escluster.config import StackConfig
from escluster.kubernetes import ClusterAccess, cluster_access
from escluster.sections import Target
from escluster.state import STATE_OUTPUT, ClusterState, parse_state

# The Pulumi engine's built-in function behind stack references (pulumi/pulumi
# pkg/resource/deploy/builtins.go, `readStackOutputs`; the Node.js SDK's StackReference calls it too): the
# outputs of a stack's last update. Reading the stack itself gives what the last successful `up` left.
READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"

SECRET_KEYS = ("security",)


class ConfigError(pulumi.RunError):
    """A bad stack config. Pulumi prints a RunError's message alone, without a traceback."""


class UnknownStateError(ConfigError):
    """The stack's last state was saved unknown."""


def previous_state(config: StackConfig) -> ClusterState | None:
    """The last state, or None for a new stack, or for one adopted with `cluster.bootstrapped` whose state
    is unknown."""
    try:
        return read_previous_state()
    except UnknownStateError:
        if config.cluster.bootstrapped:
            return None
        raise


def stack_config_values(project: str) -> tuple[dict[str, Any], set[str], list[str]]:
    """Every config value in the project's namespace, the keys held as secrets, and the keys of
    other namespaces (`elastic:cluster`), which the program never reads."""
    prefix = f"{project}:"
    raw: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env())
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    elsewhere: list[str] = []
    for full_key, value in raw.items():
        if not full_key.startswith(prefix):
            elsewhere.append(full_key)
            continue
        key = full_key[len(prefix) :]
        values[key] = _decode(value)
        if runtime_config.is_config_secret(full_key) or full_key in secret_keys:
            secrets.add(key)
    return values, secrets, sorted(elsewhere)


def _decode(value: Any) -> Any:
    # Structured config arrives as JSON text; plain values stay strings.
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def misplaced_keys(project: str, other_keys: Sequence[str]) -> list[str]:
    """Keys of another namespace named like one of ours (`elastic:cluster`): a typo that would leave
    the setting silently unread. Provider namespaces (`docker:host`, `kubernetes:context`) name none of ours."""
    ours = set(StackConfig.model_fields)
    return [key for key in other_keys if key.partition(":")[2] in ours and key.partition(":")[0] != project]


def parse_stack_config(
    values: Mapping[str, Any], secret_keys: set[str], stack: str, *, project: str, other_keys: Sequence[str]
) -> StackConfig:
    if misplaced := misplaced_keys(project, other_keys):
        lines = [f"Pulumi.{stack}.yaml: config keys outside the `{project}:` namespace"]
        for key in misplaced:
            name = key.partition(":")[2]
            lines.append(
                f"  {key}: the program reads `{project}:{name}`; write the key as `{project}:{name}` "
                f"(or `{name}` without a namespace)"
            )
        raise ConfigError("\n".join(lines))
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
    project = pulumi.get_project()
    values, secrets, other_keys = stack_config_values(project)
    config = parse_stack_config(values, secrets, pulumi.get_stack(), project=project, other_keys=other_keys)
    for warning in config.warnings():
        pulumi.log.warn(f"Pulumi.{pulumi.get_stack()}.yaml: {warning}")
    return config


def kubernetes_access(config: StackConfig) -> ClusterAccess | None:
    """How the program's kubectl steps reach the cluster the Kubernetes provider uses (target kubernetes)."""
    if config.target is not Target.kubernetes:
        return None
    provider = pulumi.Config("kubernetes")
    try:
        return cluster_access(config.k8s, provider.get("context"), provider.get("kubeconfig"))
    except ValueError as error:
        raise ConfigError(f"Pulumi.{pulumi.get_stack()}.yaml: {error}") from None


def read_previous_state() -> ClusterState | None:
    """The `cluster_state` this stack exported on its last successful `up` (None for a new stack).

    A synchronous invoke, so the program knows before it registers anything; pulumi.runtime.invoke is the
    SDK's public entry point for functions, and this one runs in previews too."""
    stack = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    try:
        result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": stack})
    except Exception:
        # A self-managed backend in its legacy layout names stacks without organization and project.
        stack = pulumi.get_stack()
        try:
            result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": stack})
        except Exception as error:
            raise ConfigError(
                f"stack {stack}: cannot read its last outputs from the backend ({error}); the program needs them "
                "to know whether the cluster has formed. Check `pulumi stack output` works, then run again"
            ) from None
    outputs = (result.value or {}).get("outputs") or {}
    if outputs and STATE_OUTPUT not in outputs:
        # The program exports all its outputs or none, and the state is never null; an output saved unknown
        # (an `up` with --continue-on-error or --target) reaches us missing: the SDK drops the keys of
        # values that deserialize to None (pulumi/runtime/rpc.py deserialize_properties).
        raise UnknownStateError(
            f"stack {stack}: its last outputs hold no {STATE_OUTPUT} (an `up` with --continue-on-error or --target "
            "can leave it unknown), so the program cannot tell what is running. Set cluster.bootstrapped: true to "
            "go on as a formed cluster whose changes are not checked against its last state"
        )
    try:
        return parse_state(outputs.get(STATE_OUTPUT))
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"stack {stack}: {error}") from None


def check_changes(previous: ClusterState | None, config: StackConfig) -> None:
    """Refuse, before any resource, a change the deployed cluster cannot take."""
    if errors := refused_changes(previous, config):
        lines = [f"Pulumi.{pulumi.get_stack()}.yaml: refused: the running cluster cannot take this change"]
        lines += [f"  {error}" for error in dict.fromkeys(errors)]
        raise ConfigError("\n".join(lines))


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
