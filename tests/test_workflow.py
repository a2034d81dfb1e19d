"""The pull-request workflow: valid for GitHub, runs the README's test command and the offline diff,
and previews exactly the stacks whose credentials are configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from review.stacks import stack_names
from tests.harness import ROOT
from tests.test_readme import README

WORKFLOW_FILE = ROOT / ".github" / "workflows" / "preview.yml"
WORKFLOW: dict[Any, Any] = yaml.safe_load(WORKFLOW_FILE.read_text())
JOBS: dict[str, Any] = WORKFLOW["jobs"]


def test_the_workflow_matches_githubs_schema() -> None:
    # The schema ships with check-jsonschema (SchemaStore's github-workflow.json): no network needed.
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    result = subprocess.run([*command, str(WORKFLOW_FILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_on_pull_requests() -> None:
    # PyYAML reads the bare key `on` as True.
    assert "pull_request" in (WORKFLOW.get("on") or WORKFLOW[True])


def test_the_test_job_runs_the_readme_test_command() -> None:
    command = README.split("## Run the tests", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0].strip()
    runs = [step.get("run", "").strip() for step in JOBS["test"]["steps"]]
    assert command in runs


def test_the_offline_diff_is_posted_as_a_comment() -> None:
    steps = JOBS["offline-diff"]["steps"]
    diff = next(step for step in steps if "python -m review diff --base" in step.get("run", ""))
    assert "preview.md" in diff["run"]
    comment = next(step for step in steps if str(step.get("uses", "")).startswith("marocchino/sticky-pull-request"))
    assert comment["with"]["path"] == "preview.md"
    assert JOBS["offline-diff"]["permissions"]["pull-requests"] == "write"
    checkout = next(step for step in steps if str(step.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, "the base branch must be fetched to be rendered"


def test_the_real_preview_covers_every_stack_with_the_policy_pack() -> None:
    job = JOBS["pulumi-preview"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == stack_names(ROOT)
    preview = next(step for step in job["steps"] if str(step.get("uses", "")).startswith("pulumi/actions"))
    assert preview["with"]["command"] == "preview" and preview["with"]["diff"] is True
    assert preview["with"]["policyPacks"] == "policy"
    assert (ROOT / "policy" / "PulumiPolicy.yaml").exists()
    assert "steps.credentials.outputs.ready == 'true'" in preview["if"]


CREDENTIALS = {
    "PULUMI_ACCESS_TOKEN": "pul-token",
    "LAB_SSH_KEY": "key",
    "STAGING_SSH_KEY": "key",
    "PROD_KUBECONFIG": "config",
}


def readiness(stack: str, secrets: dict[str, str], tmp_path: Path) -> str:
    """Run the job's credentials step as the runner would, and read what it tells the later steps."""
    step = next(s for s in JOBS["pulumi-preview"]["steps"] if s.get("id") == "credentials")
    output = tmp_path / "output"
    output.touch()
    names = {*step["env"], *JOBS["pulumi-preview"]["env"]}
    environment = {name: secrets.get(name, "") for name in names} | {"STACK": stack, "GITHUB_OUTPUT": str(output)}
    subprocess.run(["bash", "-e", "-c", step["run"]], env={**os.environ, **environment}, check=True)
    return dict(line.split("=", 1) for line in output.read_text().split())["ready"]


@pytest.mark.parametrize("stack", ["dev", "lab", "staging", "prod"])
def test_a_stack_with_its_credentials_is_previewed(stack: str, tmp_path: Path) -> None:
    assert readiness(stack, CREDENTIALS, tmp_path) == "true"


@pytest.mark.parametrize(
    ("stack", "missing"),
    [
        ("dev", "PULUMI_ACCESS_TOKEN"),
        ("lab", "LAB_SSH_KEY"),
        ("staging", "STAGING_SSH_KEY"),
        ("prod", "PROD_KUBECONFIG"),
        ("prod", "PULUMI_ACCESS_TOKEN"),
    ],
)
def test_a_stack_without_its_credentials_is_skipped(stack: str, missing: str, tmp_path: Path) -> None:
    secrets = {name: value for name, value in CREDENTIALS.items() if name != missing}
    assert readiness(stack, secrets, tmp_path) == "false"


def test_a_self_managed_backend_counts_as_state_access(tmp_path: Path) -> None:
    secrets = {"PULUMI_BACKEND_URL": "s3://state-bucket", "PROD_KUBECONFIG": "config"}
    assert readiness("prod", secrets, tmp_path) == "true"
