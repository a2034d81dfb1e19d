"""The pull-request workflow: valid for GitHub, runs the README's test command and the offline diff,
caches what it installs, and previews every stack, each leg only once every secret it uses is there,
`dev` as the README deploys it and `prod` behind the `production` environment."""

from __future__ import annotations

import fnmatch
import os
import re
import stat
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
READY = "steps.credentials.outputs.ready == 'true'"
# The inputs pulumi/actions v7 declares (pulumi/actions action.yml at tag v7.0.0).
PULUMI_ACTION_INPUTS = {
    *("command", "stack-name", "pulumi-version", "pulumi-version-file", "work-dir", "comment-on-pr"),
    *("comment-on-pr-number", "comment-on-summary", "github-token", "cloud-url", "secrets-provider", "parallel"),
    *("message", "config-map", "expect-no-changes", "diff", "replace", "exclude", "exclude-dependents", "target"),
    *("target-dependents", "policyPacks", "policyPackConfigs", "refresh", "upsert", "remove", "edit-pr-comment"),
    *("color", "exclude-protected", "plan", "suppress-outputs", "suppress-progress", "always-include-summary"),
    *("continue-on-error", "log-verbosity", "log-flow", "debug"),
}
# What each leg's credentials step must find before the leg runs (README "Reviewing a change").
LEG_SECRETS = {
    "dev": set(),
    "lab": {"LAB_SSH_KEY", "LAB_SSH_KNOWN_HOSTS"},
    "staging": {"STAGING_SSH_KEY", "STAGING_SSH_KNOWN_HOSTS"},
    "prod": {"PROD_KUBECONFIG"},
}
STATE_SECRETS = ("PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE")
ALL_SECRETS = {name: f"value-of-{name}" for name in (*STATE_SECRETS, *sorted(set().union(*LEG_SECRETS.values())))}
# Pulumi Cloud holds the state and the stacks' secrets: no backend URL, no passphrase.
CLOUD = {name: value for name, value in ALL_SECRETS.items() if name not in STATE_SECRETS[1:]}


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(action + "@")


def preview_jobs() -> dict[str, dict[str, Any]]:
    return {name: job for name, job in JOBS.items() if any(uses(s, "pulumi/actions") for s in job["steps"])}


def legs_of(job: dict[str, Any]) -> list[str]:
    stack = job["env"]["STACK"]
    return list(job["strategy"]["matrix"]["stack"]) if stack == "${{ matrix.stack }}" else [stack]


def job_of(leg: str) -> dict[str, Any]:
    return next(job for job in preview_jobs().values() if leg in legs_of(job))


def evaluate(value: Any, leg: str, secrets: dict[str, str]) -> str:
    """A step's value as the runner expands it, for the few expression forms this workflow uses."""
    text = str(value)
    this_leg = rf"matrix\.stack == '{leg}'"
    forms: list[tuple[str, Any]] = [
        (r"\$\{\{ secrets\.(\w+) \}\}", lambda m: secrets.get(m[1], "")),
        (r"\$\{\{ matrix\.stack \}\}", lambda m: leg),
        (rf"\$\{{\{{ {this_leg} && secrets\.(\w+) \|\| \S+ \}}\}}", lambda m: secrets.get(m[1], "")),
        (r"\$\{\{ matrix\.stack == '\w+' && \S+ \|\| secrets\.(\w+) \}\}", lambda m: secrets.get(m[1], "")),
        (r"\$\{\{ matrix\.stack == '\w+' && \S+ \|\| '' \}\}", lambda m: ""),
    ]
    for pattern, expand in forms:
        text = re.sub(pattern, expand, text)
    assert "${{" not in text, f"an expression this test cannot expand: {value}"
    return text


def credentials_step(job: dict[str, Any]) -> dict[str, Any]:
    return next(step for step in job["steps"] if step.get("id") == "credentials")


def check(leg: str, secrets: dict[str, str], stack_dir: Path, tmp_path: Path) -> tuple[str, str]:
    """Run the leg's credentials step with bash as the runner would: what it tells the later steps
    (`ready`), and what it prints."""
    job = job_of(leg)
    step = credentials_step(job)
    output = tmp_path / "output"
    output.write_text("")
    environment = {name: evaluate(value, leg, secrets) for name, value in {**job["env"], **step.get("env", {})}.items()}
    # Only the step's environment holds secrets, as on a runner.
    inherited = {name: value for name, value in os.environ.items() if name not in ALL_SECRETS}
    run = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        env={**inherited, **environment, "GITHUB_OUTPUT": str(output)},
        cwd=stack_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("=", 1) for line in output.read_text().split())["ready"], run.stdout


def test_the_workflow_matches_githubs_schema() -> None:
    # The schema ships with check-jsonschema (SchemaStore's github-workflow.json): no network needed.
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    result = subprocess.run([*command, str(WORKFLOW_FILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_merge_keys() -> None:
    # GitHub reads anchors and aliases in workflows, but not `<<` merge keys, which PyYAML would accept.
    assert "<<:" not in WORKFLOW_FILE.read_text()


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
    comment = next(step for step in steps if uses(step, "marocchino/sticky-pull-request-comment"))
    assert comment["with"]["path"] == "preview.md"
    assert JOBS["offline-diff"]["permissions"]["pull-requests"] == "write"
    checkout = next(step for step in steps if uses(step, "actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, "the base branch must be fetched to be rendered"


@pytest.mark.parametrize("job_name", sorted(JOBS))
def test_each_pip_install_is_cached_on_the_files_it_installs(job_name: str) -> None:
    steps = JOBS[job_name]["steps"]
    installed = {f for step in steps for f in re.findall(r"pip install -r (\S+)", step.get("run", ""))}
    python = next(step for step in steps if uses(step, "actions/setup-python"))
    assert python["with"]["cache"] == "pip"
    patterns = python["with"]["cache-dependency-path"].split()
    assert installed and all(any(fnmatch.fnmatch(f, p) for p in patterns) for f in installed), (installed, patterns)
    assert all(steps.index(python) < i for i, s in enumerate(steps) if "pip install" in s.get("run", ""))


@pytest.mark.parametrize("job_name", sorted(preview_jobs()))
def test_the_pulumi_plugins_are_cached_on_requirements_txt(job_name: str) -> None:
    steps = JOBS[job_name]["steps"]
    cache = next(step for step in steps if uses(step, "actions/cache"))
    assert cache["with"]["path"] == "~/.pulumi/plugins"
    assert "hashFiles('requirements.txt')" in cache["with"]["key"]
    preview = next(step for step in steps if uses(step, "pulumi/actions"))
    assert steps.index(cache) < steps.index(preview)


def test_every_stack_is_previewed_once_with_the_policy_pack() -> None:
    legs = [leg for job in preview_jobs().values() for leg in legs_of(job)]
    assert sorted(legs) == stack_names(ROOT) == sorted(LEG_SECRETS)
    assert (ROOT / "policy" / "PulumiPolicy.yaml").exists()
    pinned = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned is not None
    for job in preview_jobs().values():
        preview = next(step for step in job["steps"] if uses(step, "pulumi/actions"))
        assert preview["with"]["command"] == "preview" and preview["with"]["diff"] is True
        assert preview["with"]["policyPacks"] == "policy"
        assert preview["with"]["pulumi-version"] == pinned.group(1), "the CLI must match the SDK"
        stack_name = preview["with"]["stack-name"]
        assert (legs_of(job) if stack_name == "${{ env.STACK }}" else [stack_name]) == legs_of(job)


def test_every_pulumi_action_is_v7_with_inputs_v7_declares() -> None:
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                if "pulumi/actions" in str(step.get("uses", "")):
                    assert step["uses"] == "pulumi/actions@v7", workflow.name
                    assert set(step.get("with", {})) <= PULUMI_ACTION_INPUTS, (workflow.name, step["with"])


@pytest.mark.parametrize("job_name", sorted(preview_jobs()))
def test_the_credentials_are_checked_before_any_step_uses_them(job_name: str) -> None:
    steps = JOBS[job_name]["steps"]
    first = steps.index(credentials_step(JOBS[job_name]))
    assert all("secrets." not in yaml.safe_dump(step) for step in steps[:first])
    assert all(READY in step.get("if", "") for step in steps[first + 1 :]), "a step runs without the check"


def test_dev_is_previewed_as_the_readme_deploys_it(tmp_path: Path) -> None:
    deploy = README.split("## Deploy `dev` on a fresh machine", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    assert "pulumi login --local" in deploy and "stack select --create dev" in deploy
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" in deploy
    steps = job_of("dev")["steps"]
    assert "secrets." not in yaml.safe_dump(job_of("dev")), "dev needs no secret"
    preview = next(step for step in steps if uses(step, "pulumi/actions"))
    # `pulumi login --local` is `pulumi login file://~`; `upsert` creates the stack when missing.
    assert preview["with"]["cloud-url"] == "file://~" and preview["with"]["upsert"] is True
    passphrase = next(step for step in steps if "PULUMI_CONFIG_PASSPHRASE_FILE" in step.get("run", ""))
    assert steps.index(passphrase) < steps.index(preview)
    github_env = tmp_path / "github_env"
    environment = {**os.environ, "RUNNER_TEMP": str(tmp_path), "GITHUB_ENV": str(github_env)}
    subprocess.run(["bash", "-e", "-c", passphrase["run"]], env=environment, check=True)
    name, path = github_env.read_text().strip().split("=", 1)
    assert name == "PULUMI_CONFIG_PASSPHRASE_FILE"
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600 and len(Path(path).read_text().strip()) >= 40


def test_only_the_production_environment_gets_the_prod_kubeconfig() -> None:
    prod = job_of("prod")
    assert prod["environment"] == "production" and legs_of(prod) == ["prod"]
    others = [
        name for name, job in JOBS.items() if job is not prod and "secrets.PROD_KUBECONFIG" in yaml.safe_dump(job)
    ]
    assert others == []
    assert all("environment" not in job for job in JOBS.values() if job is not prod)


@pytest.mark.parametrize("leg", sorted(LEG_SECRETS))
def test_a_leg_gets_no_other_legs_secret(leg: str) -> None:
    job = job_of(leg)
    values = {evaluate(v, leg, ALL_SECRETS) for step in job["steps"] for v in step.get("env", {}).values()}
    foreign = set().union(*(names for other, names in LEG_SECRETS.items() if other != leg)) - LEG_SECRETS[leg]
    assert not values & {ALL_SECRETS[name] for name in foreign}


@pytest.mark.parametrize("leg", sorted(LEG_SECRETS))
def test_a_leg_with_its_secrets_is_previewed(leg: str, tmp_path: Path) -> None:
    assert check(leg, CLOUD, ROOT, tmp_path)[0] == "true"
    assert check(leg, ALL_SECRETS, ROOT, tmp_path)[0] == "true"


def test_dev_needs_no_secret(tmp_path: Path) -> None:
    assert check("dev", {}, ROOT, tmp_path)[0] == "true"


@pytest.mark.parametrize(
    ("leg", "missing"),
    [(leg, name) for leg in sorted(LEG_SECRETS) for name in sorted(LEG_SECRETS[leg])]
    + [(leg, "PULUMI_ACCESS_TOKEN") for leg in ("lab", "staging", "prod")],
)
def test_a_leg_without_one_of_its_secrets_is_skipped_with_a_notice(leg: str, missing: str, tmp_path: Path) -> None:
    secrets = {name: value for name, value in CLOUD.items() if name != missing}
    ready, printed = check(leg, secrets, ROOT, tmp_path)
    assert ready == "false"
    assert printed.startswith(f"::notice::pulumi preview of {leg} skipped: ") and missing in printed
    assert not any(value in printed for value in ALL_SECRETS.values()), "a notice names secrets, never values"


@pytest.mark.parametrize("leg", ["lab", "staging", "prod"])
def test_a_self_managed_backend_needs_the_passphrase(leg: str, tmp_path: Path) -> None:
    self_managed = {name: value for name, value in ALL_SECRETS.items() if name != "PULUMI_ACCESS_TOKEN"}
    assert check(leg, self_managed, ROOT, tmp_path)[0] == "true"
    without = {name: value for name, value in self_managed.items() if name != "PULUMI_CONFIG_PASSPHRASE"}
    ready, printed = check(leg, without, ROOT, tmp_path)
    assert ready == "false" and "PULUMI_CONFIG_PASSPHRASE" in printed


@pytest.mark.parametrize(
    ("stack_file", "secrets", "needs_passphrase"),
    [
        ("encryptionsalt: v1:abc\n", CLOUD, True),  # a passphrase stack, whatever the backend
        ("secretsprovider: passphrase\n", CLOUD, True),
        (
            "secretsprovider: awskms://alias/state\nencryptedkey: abc\n",
            {**CLOUD, "PULUMI_BACKEND_URL": "s3://b"},
            False,
        ),
        ("config: {}\n", CLOUD, False),  # Pulumi Cloud's own secrets provider
    ],
)
def test_the_passphrase_is_needed_by_a_passphrase_stack_only(
    stack_file: str, secrets: dict[str, str], needs_passphrase: bool, tmp_path: Path
) -> None:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.prod.yaml").write_text(stack_file)
    ready, _ = check("prod", secrets, stacks, tmp_path)
    assert ready == ("false" if needs_passphrase else "true")
    assert check("prod", {**secrets, "PULUMI_CONFIG_PASSPHRASE": "p"}, stacks, tmp_path)[0] == "true"
