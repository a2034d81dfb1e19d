"""The mock runtime itself (review/mockrun.py): what a registration records, through the SDK's test API,
and runs that leave no event loop behind.

The recorder reads resource options from the gRPC request the SDK hands its mock monitor
(pulumi/runtime/mocks.py `MockMonitor.RegisterResource`, the fields of `RegisterResourceRequest` in
pulumi/pulumi proto/pulumi/resource.proto), which `MockResourceArgs` does not carry. The probe program
here sets every option the recorder keeps, so an SDK release that moves one fails here, by name.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from review.mockrun import Render, run_program_into
from tests.harness import ROOT

PROBE_PROJECT = "probe"
# Every option the recorder keeps, on one resource, and a secret input and output.
PROBE_PROGRAM = """
import pulumi

group = pulumi.ComponentResource("probe:index:Group", "group")
provider = pulumi.ProviderResource("probe", "probe-provider", {}, pulumi.ResourceOptions(parent=group))
earlier = pulumi.CustomResource("probe:index:Thing", "earlier", {"plain": "x"}, pulumi.ResourceOptions(parent=group))
pulumi.CustomResource(
    "probe:index:Thing",
    "optioned",
    {"plain": "y", "password": pulumi.Output.secret("probe-secret")},
    pulumi.ResourceOptions(
        parent=group,
        provider=provider,
        depends_on=[earlier],
        protect=True,
        retain_on_delete=True,
        delete_before_replace=True,
        ignore_changes=["plain"],
        replace_on_changes=["token"],
    ),
)
pulumi.export("plain_output", "visible")
pulumi.export("secret_output", pulumi.Output.secret("hidden"))
"""


def run_probe(tmp_path: Path, program: str = PROBE_PROGRAM) -> Render:
    (tmp_path / "__main__.py").write_text(textwrap.dedent(program))
    result = Render(stack="check")
    run_program_into(result, tmp_path, PROBE_PROJECT, {})
    return result


def test_a_registration_keeps_every_option_the_sdk_sends(tmp_path: Path) -> None:
    result = run_probe(tmp_path)
    assert result.resources, "nothing recorded: set_mocks(monitor=...) no longer calls MockMonitor.RegisterResource"
    group = next(r for r in result.resources if r.name == "group")
    provider = next(r for r in result.resources if r.name == "probe-provider")
    earlier = result.named("earlier")
    optioned = result.named("optioned")
    request = "RegisterResourceRequest"
    assert optioned.parent == group.urn, f"{request}.parent no longer names the parent's URN"
    assert optioned.custom and not group.custom, f"{request}.custom no longer tells custom from component"
    assert optioned.protect, f"{request}.protect is not recorded"
    assert optioned.retain_on_delete, f"{request}.retainOnDelete is not recorded"
    assert optioned.delete_before_replace, f"{request}.deleteBeforeReplace is not recorded"
    assert optioned.ignore_changes == ["plain"], f"{request}.ignoreChanges is not recorded"
    assert optioned.replace_on_changes == ["token"], f"{request}.replaceOnChanges is not recorded"
    assert earlier.urn in optioned.dependencies, f"{request}.dependencies no longer lists depends_on"
    assert optioned.provider == f"{provider.urn}::{provider.id}", f"{request}.provider is not the provider reference"
    assert not (earlier.protect or earlier.retain_on_delete or earlier.delete_before_replace or earlier.ignore_changes)


def test_secrets_are_found_in_the_sdks_wire_format(tmp_path: Path) -> None:
    # SIG_KEY and SECRET_SIG are the engine's marks of a secret; had the SDK changed them, nothing would be secret.
    result = run_probe(tmp_path)
    optioned = result.named("optioned")
    assert optioned.secret_paths == {"password"}, "a secret input is no longer recognised (SIG_KEY / SECRET_SIG)"
    assert optioned.inputs == {"plain": "y", "password": "probe-secret"}
    assert optioned.input_is_secret("password") and not optioned.input_is_secret("plain")
    assert result.outputs == {"plain_output": "visible", "secret_output": "hidden"}
    assert result.secret_outputs == {"secret_output"}, "a secret export is no longer recognised"


def test_a_failed_program_raises_its_error_and_keeps_what_came_before(tmp_path: Path) -> None:
    program = """
    import pulumi

    pulumi.CustomResource("probe:index:Thing", "before", {"plain": "x"})
    pulumi.export("exported_before", "yes")
    raise RuntimeError("the probe program fails here")
    """
    (tmp_path / "__main__.py").write_text(textwrap.dedent(program))
    result = Render(stack="check")
    with pytest.raises(RuntimeError, match="the probe program fails here"):
        run_program_into(result, tmp_path, PROBE_PROJECT, {})
    assert [r.name for r in result.resources] == ["before"]
    assert result.outputs == {"exported_before": "yes"}
    # The next run starts clean: no stack, RPC or error left by this one.
    (tmp_path / "next").mkdir()
    assert sorted(r.name for r in run_probe(tmp_path / "next").resources if r.custom) == [
        "earlier",
        "optioned",
        "probe-provider",
    ]


# What review/mockrun.py may reach in the SDK: its documented test API (pulumi/runtime/mocks.py, exported by
# pulumi/runtime/__init__.py), the stack whose exports it registers, and the monitor it records through.
PUBLIC_SDK_NAMES = {
    "pulumi.RunError",
    "pulumi.runtime.Mocks",
    "pulumi.runtime.set_mocks",
    "pulumi.runtime.test",
    "pulumi.runtime.reset_options",
    "pulumi.runtime.set_all_config",
    "pulumi.runtime.get_root_resource",
    "pulumi.runtime.mocks.MockResourceArgs",
    "pulumi.runtime.mocks.MockCallArgs",
    "pulumi.runtime.mocks.MockMonitor",
    "pulumi.runtime.stack.Stack",
}


def sdk_names(source: str) -> set[str]:
    """Every name of the pulumi package the source reaches: imported, or read as an attribute of an import."""
    tree = ast.parse(source)
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in (a for a in node.names if a.name.split(".")[0] == "pulumi"):
                # `import pulumi.runtime` binds `pulumi`; `import pulumi.runtime as r` binds `r`.
                imported[alias.asname or "pulumi"] = alias.name if alias.asname else "pulumi"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pulumi":
            imported |= {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names}
    reached = set(imported.values())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            head, _, rest = ast.unparse(node).partition(".")
            if head in imported and re.fullmatch(r"[\w.]+", rest):
                reached.add(f"{imported[head]}.{rest}")
    # `pulumi.runtime.set_mocks` reaches `pulumi.runtime` on its way.
    return {name for name in reached if not any(other.startswith(name + ".") for other in reached)}


def test_the_mock_runtime_reaches_only_public_sdk_names() -> None:
    reached = sdk_names((ROOT / "review" / "mockrun.py").read_text())
    assert reached <= PUBLIC_SDK_NAMES, f"not the SDK's public test API: {sorted(reached - PUBLIC_SDK_NAMES)}"
    # The check sees what the recorder used to reach.
    before = "from pulumi.runtime import rpc, settings\nx = rpc._special_sig_key\nsettings.SETTINGS.outputs.clear()"
    assert sdk_names(before) == {
        "pulumi.runtime.rpc._special_sig_key",
        "pulumi.runtime.settings.SETTINGS.outputs.clear",
    }


# Each run: a stack of the repository and a run that fails in a provider, in a fresh interpreter where an
# event loop left open (a ResourceWarning from its finalizer) is an error printed as "Exception ignored".
RENDERS_THEN_EXIT = """
from tests.harness import render, render_failure
render("dev")
render_failure("dev", failures={"dev-es-0": "the provider fails"})
"""
EXIT_RUNS = 12


def test_renders_leave_no_event_loop_to_close_at_exit() -> None:
    command = [sys.executable, "-W", "error::ResourceWarning", "-c", RENDERS_THEN_EXIT]
    for run in range(EXIT_RUNS):
        finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
        assert finished.returncode == 0, finished.stderr
        assert "Exception ignored" not in finished.stderr, f"run {run}:\n{finished.stderr}"
        assert "Warning" not in finished.stderr, f"run {run}:\n{finished.stderr}"
