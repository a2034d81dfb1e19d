"""The README's config reference, commands and stack table match the code; docs/rules.md names the policy
pack's policies and checks that exist; nothing points outside the repository."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from pathlib import Path

import yaml
from pulumi_policy import ResourceValidationPolicy
from pydantic import BaseModel

from elastic_policy.policies import POLICIES
from escluster.config import StackConfig
from tests import rules, rules_k8s, rules_swarm
from tests.harness import stacks_in_repo

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
RULES = (ROOT / "docs" / "rules.md").read_text()
# Folders that are not the project's: git's, virtual environments, caches.
NOT_OURS = {".git", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def model_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = [
            arg
            for candidate in (field.annotation, *typing.get_args(field.annotation))
            for arg in (candidate, *typing.get_args(candidate))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        if nested:
            if typing.get_origin(field.annotation) is list:
                yield path
                yield from model_keys(nested[0], f"{path}[].")
            else:
                yield from model_keys(nested[0], f"{path}.")
        else:
            yield path


def documented_keys() -> set[str]:
    section = README.split("## Config reference", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))


def test_config_reference_documents_exactly_the_model_keys() -> None:
    keys = set(model_keys(StackConfig))
    assert keys - documented_keys() == set(), "keys missing from the README"
    assert documented_keys() - keys == set(), "README documents keys the model does not have"


def test_ci_runs_the_readme_test_command() -> None:
    section = README.split("## Run the tests", 1)[1]
    command = re.search(r"```bash\n(.+?)\n```", section, flags=re.DOTALL)
    assert command is not None
    assert command.group(1).strip() in (ROOT / ".ci" / "run").read_text()


def test_stack_table_lists_every_stack_file() -> None:
    table = set(re.findall(r"^\| `([a-z0-9-]+)` \| ", README, flags=re.MULTILINE))
    top_level = {s for s in stacks_in_repo() if (ROOT / f"Pulumi.{s}.yaml").exists()}
    assert top_level <= table


def test_pulumi_yaml_declares_only_types_pulumi_accepts() -> None:
    # Pulumi's project schema types config as string, integer, boolean or array; an object type
    # makes every `pulumi` command fail to load the project.
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "elastic-stack"
    for key, declaration in (project.get("config") or {}).items():
        if isinstance(declaration, dict):
            assert declaration.get("type") in {"string", "integer", "boolean", "array"}, key
            assert key in StackConfig.model_fields, f"Pulumi.yaml declares unknown key {key}"


def test_the_rules_document_lists_every_policy_with_its_kind() -> None:
    listed = dict(re.findall(r"^\| `([a-z-]+)` \| (resource|stack) \|", RULES, flags=re.MULTILINE))
    kinds = {p.name: "resource" if isinstance(p, ResourceValidationPolicy) else "stack" for p in POLICIES}
    assert listed == kinds


def test_the_rules_document_names_checks_and_files_that_exist() -> None:
    for module, name in re.findall(r"`(?:(rules_k8s|rules_swarm)\.)?(check_[a-z_]+)`", RULES):
        owner = {"rules_k8s": rules_k8s, "rules_swarm": rules_swarm}.get(module, rules)
        assert hasattr(owner, name), f"docs/rules.md names {module or 'rules'}.{name}"
    for path in re.findall(r"`((?:tests|escluster|policy)/[\w./]+)`", RULES):
        assert (ROOT / path).exists(), f"docs/rules.md names {path}"
    for policy in re.findall(r"polic(?:y|ies) `([a-z-]+)`", RULES):
        assert policy in {p.name for p in POLICIES}, f"docs/rules.md names policy {policy}"


def project_files(folder: Path = ROOT) -> Iterator[Path]:
    for path in folder.iterdir():
        if path.is_dir() and path.name not in NOT_OURS:
            yield from project_files(path)
        elif path.is_file():
            yield path


def test_nothing_refers_to_a_path_outside_the_repository() -> None:
    """A clone holds the repository alone: no file may send its reader to a folder beside it."""
    outside = re.compile(r"\.\./" + "shared|/work/" + "shared")  # split, so that this line does not match
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in project_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if outside.search(line)
    ]
    assert found == []
