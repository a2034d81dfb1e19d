"""Run the real `__main__.py` under Pulumi's mock runtime and record every registration.

The recording keeps what the engine would see: inputs, which input paths are secrets,
parent, protect / retain_on_delete, dependencies, and the stack outputs.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "elastic-stack"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    secret_paths: set[str]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    dependencies: list[str]
    provider: str

    def input_is_secret(self, path: str) -> bool:
        """True when the input at `path` (dots and [i]) or a value inside it is a secret."""
        return any(p == path or p.startswith((path + ".", path + "[")) for p in self.secret_paths) or any(
            path.startswith((p + ".", p + "[")) for p in self.secret_paths
        )


@dataclass
class Render:
    stack: str
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    # Passwords the stack config set (with --secret): they must not leak either.
    configured_secrets: set[str] = field(default_factory=set)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registration:
        """The custom resource of that name (a component may share the name of its main child)."""
        matches = [r for r in self.resources if r.name == name and r.custom]
        assert len(matches) == 1, f"{len(matches)} resources named {name}"
        return matches[0]

    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.resources}


def _secret_paths(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            yield path
            return
        for key, item in value.items():
            yield from _secret_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_paths(item, f"{path}[{index}]")


def _unwrap_secrets(value: Any) -> Any:
    """The raw inputs with each secret replaced by its value; `_secret_paths` remembers where they were."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap_secrets(value.get("value"))
        return {key: _unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(item) for item in value]
    return value


def _fake_outputs(args: pulumi_mocks.MockResourceArgs) -> dict[str, Any]:
    """What the providers would return, where the program reads it."""
    name = args.name
    if args.typ == "tls:index/privateKey:PrivateKey":
        return {"private_key_pem": f"-----BEGIN PRIVATE KEY-----\n{name}\n-----END PRIVATE KEY-----\n"}
    if args.typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
        return {"cert_pem": f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n"}
    if args.typ == "tls:index/certRequest:CertRequest":
        return {"cert_request_pem": f"-----BEGIN CERTIFICATE REQUEST-----\n{name}\n-----END CERTIFICATE REQUEST-----\n"}
    if args.typ == "random:index/randomPassword:RandomPassword":
        return {"result": f"generated-{name}"}
    if args.typ == "docker:index/remoteImage:RemoteImage":
        # The id follows the image reference, as a real pull's does: a new version is a new id.
        return {"image_id": f"sha256:{args.inputs['name']}", "repo_digest": args.inputs.get("name", "")}
    if args.typ in ("docker:index/secret:Secret", "docker:index/serviceConfig:ServiceConfig"):
        return {"name": args.inputs.get("name") or f"{name}-1a2b3c"}  # Pulumi's autonaming
    if args.typ == "docker:index/container:Container" and args.inputs.get("attach"):
        return {"exit_code": 0}
    return {}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, exit_codes: Mapping[str, int] | None = None) -> None:
        self.exit_codes = dict(exit_codes or {})

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = {**args.inputs, **_fake_outputs(args)}
        if args.name in self.exit_codes:
            state["exit_code"] = self.exit_codes[args.name]
        return f"{args.name}-id", state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: RecordingMocks, render: Render) -> None:
        super().__init__(mocks)
        self.render = render

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != STACK_TYPE:
            raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            self.render.resources.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    custom=request.custom,
                    inputs=_unwrap_secrets(raw),
                    secret_paths=set(_secret_paths(raw)),
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    provider=request.provider,
                    dependencies=list(request.dependencies),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.urn.endswith(f"::{STACK_TYPE}::{PROJECT}-{self.render.stack}"):
            raw = json_format.MessageToDict(request.outputs, preserving_proto_field_name=True)
            self.render.secret_outputs = {p.split(".")[0].split("[")[0] for p in _secret_paths(raw)}
            self.render.outputs = _unwrap_secrets(raw)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def stack_file(stack: str) -> Path:
    for folder in (ROOT, ROOT / "tests" / "stacks"):
        path = folder / f"Pulumi.{stack}.yaml"
        if path.exists():
            return path
    raise FileNotFoundError(f"no Pulumi.{stack}.yaml")


def read_stack_config(stack: str) -> dict[str, Any]:
    document = yaml.safe_load(stack_file(stack).read_text()) or {}
    return dict(document.get("config") or {})


def to_pulumi_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the engine hands it to a program: structured values as JSON text."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def render(
    stack: str,
    config: Mapping[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    exit_codes: Mapping[str, int] | None = None,
) -> Render:
    """Run `__main__.py` for a stack (its yaml file, or `config` given here) and record everything."""
    result = Render(stack=stack)
    _run(result, config, secret_keys, exit_codes)
    return result


def render_failure(
    stack: str,
    config: Mapping[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    exit_codes: Mapping[str, int] | None = None,
) -> tuple[BaseException, Render]:
    """Run a program that must fail: the error, and what it registered before failing."""
    result = Render(stack=stack)
    try:
        _run(result, config, secret_keys, exit_codes)
    except Exception as error:
        return error, result
    raise AssertionError(f"stack {stack} rendered without an error")


def _drop_duplicate_program_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A failed program leaves Futures holding the RunError the test already received from the run;
    asyncio would print each again when it is collected. Everything else goes to the default handler."""
    if isinstance(context.get("exception"), pulumi.RunError) and "never retrieved" in str(context.get("message")):
        return
    loop.default_exception_handler(context)


def _run(
    result: Render,
    config: Mapping[str, Any] | None,
    secret_keys: list[str] | None,
    exit_codes: Mapping[str, int] | None,
) -> None:
    mocks = RecordingMocks(exit_codes)
    # A run that failed leaves its RPCs and errors behind; start clean, as pulumi.runtime.test does.
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=result.stack, preview=False, monitor=RecordingMonitor(mocks, result)
    )
    # set_mocks made a root stack of its own; the program gets a fresh one, as under `pulumi up`.
    settings.set_root_resource(None)  # type: ignore[arg-type]
    values = read_stack_config(result.stack) if config is None else config
    security = values.get(f"{PROJECT}:security") or {}
    result.configured_secrets = {str(v) for k, v in security.items() if k.endswith("password") and v}
    runtime_config.set_all_config(to_pulumi_config(values), secret_keys or [])

    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    asyncio.get_event_loop().set_exception_handler(_drop_duplicate_program_errors)

    _sync_await(run_in_stack(program))


def stacks_of_target(target: str) -> list[str]:
    return [s for s in stacks_in_repo() if read_stack_config(s).get(f"{PROJECT}:target", "docker") == target]


def stacks_in_repo() -> list[str]:
    """Every example stack: the top-level Pulumi.<stack>.yaml files and the test-only ones."""
    files = sorted(ROOT.glob("Pulumi.*.yaml")) + sorted((ROOT / "tests" / "stacks").glob("Pulumi.*.yaml"))
    return [path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in files]
