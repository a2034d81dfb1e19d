"""The end-to-end workflow: valid for GitHub, one job per leg running that leg's file with skips turned
into failures, and on failure the engines' logs collected (the script runs here against stand-ins)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e import legs
from tests.harness import ROOT

WORKFLOW_FILE = ROOT / ".github" / "workflows" / "e2e.yml"
WORKFLOW: dict[Any, Any] = yaml.safe_load(WORKFLOW_FILE.read_text())
JOB: dict[str, Any] = WORKFLOW["jobs"]["leg"]
COLLECT = ROOT / "tests" / "e2e" / "collect-logs.sh"


def step(fragment: str) -> dict[str, Any]:
    found = [s for s in JOB["steps"] if fragment in str(s.get("run", "")) or fragment in str(s.get("uses", ""))]
    assert len(found) == 1, f"{len(found)} steps with {fragment}"
    chosen: dict[str, Any] = found[0]
    return chosen


def test_the_workflow_matches_githubs_schema() -> None:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    result = subprocess.run([*command, str(WORKFLOW_FILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_on_changes_to_the_program_and_on_demand() -> None:
    triggers = WORKFLOW.get("on") or WORKFLOW[True]
    assert "workflow_dispatch" in triggers
    paths = triggers["pull_request"]["paths"]
    for program_part in ("__main__.py", "components/**", "escluster/**", "targets/**", "verify/**", "tests/e2e/**"):
        assert program_part in paths


def test_each_leg_runs_its_own_file_and_cannot_be_skipped() -> None:
    legs_run = JOB["strategy"]["matrix"]["leg"]
    assert sorted(legs_run) == sorted(p.stem.removeprefix("test_") for p in (ROOT / "tests" / "e2e").glob("test_*.py"))
    assert "tests/e2e/test_${{ matrix.leg }}.py" in step("pytest")["run"]
    assert JOB["env"]["E2E_REQUIRED"]


def test_the_kind_leg_gets_the_cluster_it_looks_for() -> None:
    kind = step("helm/kind-action")
    assert kind["with"]["cluster_name"] == legs.KIND_CLUSTER and kind["if"] == "matrix.leg == 'kind'"


def test_the_pulumi_cli_matches_the_sdk() -> None:
    pinned = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned is not None and step("pulumi/actions")["with"]["pulumi-version"] == pinned.group(1)
    assert "command" not in step("pulumi/actions")["with"], "the action only installs the CLI here"


def test_a_failed_leg_uploads_the_logs_and_verifys_output() -> None:
    collect, upload = step("collect-logs.sh"), step("actions/upload-artifact")
    assert collect["if"] == upload["if"] == "failure()"
    assert '"$E2E_ARTIFACTS"' in collect["run"] and upload["with"]["path"] == JOB["env"]["E2E_ARTIFACTS"]


@pytest.fixture
def bin_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="escluster-collect-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def stand_in(directory: Path, name: str, body: str) -> None:
    (directory / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
    (directory / name).chmod(0o755)


DOCKER = """case "$1 $2" in
  "ps -a") echo "CONTAINER ID   NAMES"; echo "abc   e2e-dev-es-0" ;;
  "ps -aq") echo abc ;;
  "inspect --format") echo /e2e-dev-es-0 ;;
  "logs --tail") echo "es started" ;;
  "service ls") exit 1 ;;
esac"""


def test_the_log_collection_gathers_what_the_engines_say(bin_dir: Path) -> None:
    stand_in(bin_dir, "docker", DOCKER)
    kubectl = 'case "$*" in *version*) ;; *"get pods"*) echo pod/es-0 ;; *logs*) echo "pod log" ;; *) echo all ;; esac'
    stand_in(bin_dir, "kubectl", kubectl)
    out = bin_dir / "artifacts"
    result = subprocess.run(["bash", str(COLLECT), str(out)], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=False)
    assert result.returncode == 0
    assert (out / "container-e2e-dev-es-0.log").read_text() == "es started\n"
    assert "e2e-dev-es-0" in (out / "docker-ps.txt").read_text()
    assert (out / "pod-e2e-es-0.log").read_text() == "pod log\n"
    assert (out / "pod-metallb-system-es-0.log").exists() and (out / "kubernetes.txt").read_text() == "all\n"


def test_the_log_collection_never_fails_and_skips_an_unreachable_cluster(bin_dir: Path) -> None:
    stand_in(bin_dir, "docker", "exit 1")
    stand_in(bin_dir, "kubectl", "exit 1")
    out = bin_dir / "artifacts"
    result = subprocess.run(["bash", str(COLLECT), str(out)], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=False)
    assert result.returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["docker-ps.txt"]
