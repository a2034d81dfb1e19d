"""The repository's stacks under Pulumi's mock runtime: `review.mockrun` runs the real `__main__.py`
and records every registration; this adds the test-only stacks and failure runs."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from review.mockrun import Registration, Render, run_program_into
from review.stacks import read_yaml

__all__ = ["PROJECT", "ROOT", "Registration", "Render", "render", "render_failure"]

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "elastic-stack"


def stack_file(stack: str) -> Path:
    for folder in (ROOT, ROOT / "tests" / "stacks"):
        path = folder / f"Pulumi.{stack}.yaml"
        if path.exists():
            return path
    raise FileNotFoundError(f"no Pulumi.{stack}.yaml")


def read_stack_config(stack: str) -> dict[str, Any]:
    return dict(read_yaml(stack_file(stack)).get("config") or {})


def render(
    stack: str,
    config: Mapping[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    *,
    previous: Mapping[str, Any] | None = None,
    failures: Mapping[str, str] | None = None,
    renewed: Collection[str] = (),
) -> Render:
    """Run `__main__.py` for a stack (its yaml file, or `config` given here) and record everything.
    `previous`: the outputs of the stack's last `up`; `failures`: resources whose creation fails;
    `renewed`: resources the provider made anew (a renewed certificate)."""
    result = Render(stack=stack)
    _run(result, config, secret_keys, previous=previous, failures=failures, renewed=renewed)
    return result


def render_failure(
    stack: str,
    config: Mapping[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    *,
    previous: Mapping[str, Any] | None = None,
    failures: Mapping[str, str] | None = None,
) -> tuple[BaseException, Render]:
    """Run a program that must fail: the error, and what it registered before failing."""
    result = Render(stack=stack)
    try:
        _run(result, config, secret_keys, previous=previous, failures=failures, renewed=())
    except Exception as error:
        return error, result
    raise AssertionError(f"stack {stack} rendered without an error")


def _run(
    result: Render,
    config: Mapping[str, Any] | None,
    secret_keys: list[str] | None,
    *,
    previous: Mapping[str, Any] | None,
    failures: Mapping[str, str] | None,
    renewed: Collection[str],
) -> None:
    values = read_stack_config(result.stack) if config is None else config
    security = values.get(f"{PROJECT}:security") or {}
    result.configured_secrets = {str(v) for k, v in security.items() if k.endswith("password") and v}
    run_program_into(
        result,
        ROOT,
        PROJECT,
        values,
        secret_keys=secret_keys,
        previous_outputs=previous,
        failures=failures,
        renewed=renewed,
    )


def stacks_of_target(target: str) -> list[str]:
    return [s for s in stacks_in_repo() if read_stack_config(s).get(f"{PROJECT}:target", "docker") == target]


def stacks_in_repo() -> list[str]:
    """Every example stack: the top-level Pulumi.<stack>.yaml files and the test-only ones."""
    files = sorted(ROOT.glob("Pulumi.*.yaml")) + sorted((ROOT / "tests" / "stacks").glob("Pulumi.*.yaml"))
    return [path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in files]
