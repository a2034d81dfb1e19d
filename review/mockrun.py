"""Run a Pulumi program under the mock runtime and record every registration.

The recording keeps what the engine would see: inputs, which input paths are secrets, parent,
protect / retain_on_delete / delete_before_replace, dependencies, provider, and the stack outputs.
Mock outputs are a pure function of a resource's inputs, as a real provider's are in the ways that
matter downstream: a changed certificate request gives a new certificate, a changed swarm config a
new config id, a new image reference a new image id.

The run uses the SDK's documented unit-test API (`pulumi.runtime.set_mocks`, `Mocks`, `test`), except for
two internals the SDK exports but does not document: `RecordingMonitor` subclasses `MockMonitor` (what
`set_mocks(monitor=...)` takes) to read each resource's options from the engine's RegisterResourceRequest,
which `MockResourceArgs` does not carry, and `_register_stack_outputs` reads the root `Stack`'s outputs.
tests/test_mockrun.py fails, naming what moved, when an SDK release changes either.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import gc
import hashlib
import json
import runpy
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import Stack

STACK_TYPE = "pulumi:pulumi:Stack"
# How the engine's protocol marks a secret in a property value: {SIG_KEY: SECRET_SIG, "value": ...}
# (pulumi/pulumi sdk/go/common/resource/sig/sig.go, `Key` and `Secret`).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    id: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    secret_paths: set[str]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    dependencies: list[str]
    provider: str
    # The inputs as serialized for the engine, secrets still wrapped: what a render masks.
    raw_inputs: dict[str, Any] = field(default_factory=dict, repr=False)
    # What the (mock) provider answered: inputs and computed outputs, secrets unwrapped.
    outputs: dict[str, Any] = field(default_factory=dict, repr=False)
    ignore_changes: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)

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
    raw_outputs: dict[str, Any] = field(default_factory=dict, repr=False)
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


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def _secret_paths(value: Any, path: str = "") -> Iterator[str]:
    if is_secret(value):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secret_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_paths(item, f"{path}[{index}]")


def replace_secrets(value: Any, replacement: Callable[[Any], Any]) -> Any:
    """`value` with each secret replaced by `replacement(the secret's value)`, mappings sorted by key."""
    if is_secret(value):
        return replacement(value.get("value"))
    if isinstance(value, dict):
        return {key: replace_secrets(value[key], replacement) for key in sorted(value)}
    if isinstance(value, list):
        return [replace_secrets(item, replacement) for item in value]
    return value


def _unwrap_secrets(value: Any) -> Any:
    """The raw inputs with each secret replaced by its value; `_secret_paths` remembers where they were."""
    return replace_secrets(value, _unwrap_secrets)


def _digest(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _pem(label: str, name: str, inputs: Mapping[str, Any]) -> str:
    return f"-----BEGIN {label}-----\n{name} {_digest(inputs)}\n-----END {label}-----\n"


BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
# When the mock providers make a certificate: a fixed instant, so renders do not depend on the clock.
MOCK_NOW = datetime.datetime(2026, 11, 23, tzinfo=datetime.UTC)


def _bcrypt_like(name: str, inputs: Mapping[str, Any]) -> str:
    """A string of bcrypt's shape ($2a$10$ and 53 characters of its alphabet), as pulumi-random writes."""
    digest = hashlib.sha256(f"{name}{_digest(inputs)}".encode()).digest() * 2
    return "$2a$10$" + "".join(BCRYPT_ALPHABET[b % 64] for b in digest[:53])


def _fake_outputs(args: pulumi_mocks.MockResourceArgs) -> dict[str, Any]:
    """What the providers would return, where the program reads it."""
    name, inputs = args.name, args.inputs
    if args.typ == "tls:index/privateKey:PrivateKey":
        return {"private_key_pem": _pem("PRIVATE KEY", name, inputs)}
    if args.typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
        hours = int(inputs.get("validityPeriodHours", 0))
        end = MOCK_NOW + datetime.timedelta(hours=hours)
        return {"cert_pem": _pem("CERTIFICATE", name, inputs), "validity_end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if args.typ == "tls:index/certRequest:CertRequest":
        return {"cert_request_pem": _pem("CERTIFICATE REQUEST", name, inputs)}
    if args.typ == "random:index/randomPassword:RandomPassword":
        return {"result": f"generated-{name}", "bcrypt_hash": _bcrypt_like(name, inputs)}
    if args.typ == "docker:index/remoteImage:RemoteImage":
        # The id follows the image reference, as a real pull's does: a new version is a new id.
        return {"image_id": f"sha256:{inputs['name']}", "repo_digest": inputs.get("name", "")}
    if args.typ in ("docker:index/secret:Secret", "docker:index/serviceConfig:ServiceConfig"):
        # Swarm configs and secrets are immutable: new data is a new object with a new autoname.
        return {"name": inputs.get("name") or f"{name}-{_digest(inputs)[:7]}"}
    if args.typ.startswith("kubernetes:") and isinstance(inputs.get("metadata"), dict):
        metadata = inputs["metadata"]
        if not metadata.get("name"):
            # pulumi-kubernetes auto-names an object without a name: `<resource name>-<8 random characters>`,
            # and a replacement (new data) gets a new one. Here the suffix follows the inputs.
            annotations = {**metadata.get("annotations", {}), "pulumi.com/autonamed": "true"}
            return {"metadata": {**metadata, "name": f"{name}-{_digest(inputs)[:8]}", "annotations": annotations}}
    if args.typ == "command:local:Command":
        # The setup step prints the UUID of the cluster it reached; the health baseline, a healthy status.
        if "_security/user" in str(inputs.get("create", "")):
            return {"stdout": f"cluster_uuid=mock-{_digest(inputs)}", "stderr": ""}
        return {"stdout": "green", "stderr": ""}
    if args.typ == "kubernetes:batch/v1:Job":
        return {"status": {"succeeded": 1}}
    return {}


def _fake_id(args: pulumi_mocks.MockResourceArgs) -> str:
    if args.typ in ("docker:index/secret:Secret", "docker:index/serviceConfig:ServiceConfig"):
        return f"{args.name}-{_digest(args.inputs)}"
    return f"{args.name}-id"


class MockProviderError(Exception):
    """A resource operation the mock provider was told to fail, as a real provider's error would."""


class RecordingMocks(pulumi.runtime.Mocks):
    """Mock providers, a stack whose last `up` left `previous_outputs`, resources named in `failures` whose
    operation fails with the given message, and resources named in `renewed` that the provider made anew
    with the same inputs (a certificate renewed in its early-renewal window): their outputs differ."""

    def __init__(
        self,
        previous_outputs: Mapping[str, Any] | None = None,
        failures: Mapping[str, str] | None = None,
        renewed: Collection[str] = (),
    ) -> None:
        self.previous_outputs = dict(previous_outputs or {})
        self.failures = dict(failures or {})
        self.renewed = set(renewed)

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.name in self.failures:
            raise MockProviderError(self.failures[args.name])
        outputs = _fake_outputs(args)
        if args.name in self.renewed:
            renewed = copy.copy(args)
            renewed.inputs = {**args.inputs, "renewed": True}
            outputs = _fake_outputs(renewed)
        return _fake_id(args), {**args.inputs, **outputs}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == READ_STACK_OUTPUTS:
            return {"name": args.args["name"], "outputs": self.previous_outputs, "secretOutputNames": []}, []
        raise MockProviderError(f"no mock for the function {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, recording each registration as the engine receives it. The only code here that
    relies on more than the SDK's documented test API: the gRPC requests the SDK hands its monitor."""

    def __init__(self, mocks: RecordingMocks, render: Render, project: str) -> None:
        super().__init__(mocks)
        self.render = render
        self.stack_urn_suffix = f"::{STACK_TYPE}::{project}-{render.stack}"

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != STACK_TYPE:
            raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            answered = json_format.MessageToDict(response.object, preserving_proto_field_name=True)
            self.render.resources.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    id=response.id,
                    parent=request.parent,
                    custom=request.custom,
                    inputs=_unwrap_secrets(raw),
                    secret_paths=set(_secret_paths(raw)),
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    provider=request.provider,
                    dependencies=list(request.dependencies),
                    raw_inputs=raw,
                    outputs=_unwrap_secrets(answered),
                    ignore_changes=list(request.ignoreChanges),
                    replace_on_changes=list(request.replaceOnChanges),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        raw = json_format.MessageToDict(request.outputs, preserving_proto_field_name=True)
        # The root stack registers twice: empty when `set_mocks` makes it, with the exports when the program
        # ends. The two calls may arrive in either order; the empty one must not hide the exports.
        if request.urn.endswith(self.stack_urn_suffix) and (raw or not self.render.raw_outputs):
            self.render.secret_outputs = {p.split(".")[0].split("[")[0] for p in _secret_paths(raw)}
            self.render.outputs = _unwrap_secrets(raw)
            self.render.raw_outputs = raw
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def to_pulumi_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the engine hands it to a program: structured values as JSON text."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def _duplicate_errors_dropped(
    raised: Collection[BaseException],
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """An exception handler for the run's loop. A failed program leaves Futures holding the error its
    caller already received from the run (a RunError, or the provider error in `raised`); asyncio would
    print each again when it is collected. Everything else goes to the default handler."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        received = isinstance(error, pulumi.RunError) or any(error is e for e in raised)
        if not (received and "never retrieved" in str(context.get("message"))):
            loop.default_exception_handler(context)

    return handle


@contextlib.contextmanager
def _event_loops() -> Iterator[asyncio.AbstractEventLoop]:
    """A new event loop for this thread, running the SDK's monitor calls on worker threads of its own,
    each given its loop up front; every one closed at the end.

    The SDK calls the monitor through the loop's default executor, and `MockMonitor` makes an event loop
    in a worker thread that has none and never closes it. A loop left open is closed by its finalizer
    whenever it is collected, at interpreter exit too ("unclosed event loop", a ResourceWarning); what
    goes wrong there is printed as "Exception ignored in: <function BaseEventLoop.__del__>"."""
    worker_loops: list[asyncio.AbstractEventLoop] = []

    def give_the_worker_a_loop() -> None:
        worker_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(worker_loop)
        worker_loops.append(worker_loop)

    loop = asyncio.new_event_loop()
    workers = ThreadPoolExecutor(thread_name_prefix="mock-monitor", initializer=give_the_worker_a_loop)
    loop.set_default_executor(workers)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        try:
            # A failed program can leave tasks waiting on what never came; end them as asyncio.run does.
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            workers.shutdown(wait=True)
            asyncio.set_event_loop(None)
            loop.close()
            for worker_loop in worker_loops:
                worker_loop.close()


def _register_stack_outputs() -> None:
    """Send the program's exports as the root stack's outputs, as the SDK does when a program ends
    (`set_mocks` made the stack and registered its outputs before the program exported anything)."""
    stack = pulumi.runtime.get_root_resource()
    if not isinstance(stack, Stack):
        raise TypeError(f"the root resource is {stack!r}, not the stack set_mocks makes")
    stack.register_outputs(stack.outputs)


def run_program_into(
    result: Render,
    root: Path,
    project: str,
    config: Mapping[str, Any],
    *,
    secret_keys: list[str] | None = None,
    previous_outputs: Mapping[str, Any] | None = None,
    failures: Mapping[str, str] | None = None,
    renewed: Collection[str] = (),
) -> None:
    """Run `<root>/__main__.py` as stack `result.stack` with `config` (full `project:key` names), recording
    into `result`; a program that fails raises its error, and `result` keeps what it registered before.
    `previous_outputs`: the stack outputs of the last `up` (none: a new stack)."""
    mocks = RecordingMocks(previous_outputs, failures, renewed)
    # The program imports its own packages, as `pulumi up` run in its directory would.
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))

    # `pulumi.runtime.test` runs the program, waits for every registration it started, and raises its error.
    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        try:
            runpy.run_path(str(root / "__main__.py"), run_name="__main__")
        finally:
            _register_stack_outputs()

    raised: list[BaseException] = []
    try:
        with _event_loops() as loop:
            loop.set_exception_handler(_duplicate_errors_dropped(raised))
            # No root stack, settings or RPCs left from an earlier run (a failed run leaves them).
            pulumi.runtime.reset_options(project=project, stack=result.stack)
            pulumi.runtime.set_mocks(
                mocks,
                project=project,
                stack=result.stack,
                preview=False,
                monitor=RecordingMonitor(mocks, result, project),
            )
            pulumi.runtime.set_all_config(to_pulumi_config(config), secret_keys or [])
            try:
                program()
            except Exception as error:
                raised.append(error)
                raise
    finally:
        # A run leaves cycles of futures and RPC objects whose finalizers run Python code. Collected at
        # some later allocation, they can run in the middle of a `compile()` (CPython 3.11 then raises
        # "AST constructor recursion depth mismatch"): collect them here, at a known point.
        gc.collect()
