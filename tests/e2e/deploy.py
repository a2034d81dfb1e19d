"""What the end-to-end legs share: a throwaway copy of the project with a local Pulumi backend, stacks
driven through Pulumi's Automation API, `verify` on their outputs, and requests to the cluster."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from tests.harness import PROJECT, ROOT
from verify.__main__ import deployment
from verify.checks import Result, verify

COPY_IGNORED = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".*_cache", "e2e-artifacts")


@dataclass(frozen=True)
class Project:
    """The program copied into `directory` (its own stack files, the repository's virtualenv), with a
    file backend beside it: nothing touches the user's stacks or the repository."""

    directory: Path
    env: Mapping[str, str]

    @classmethod
    def create(cls, base: Path) -> Project:
        directory = base / "project"
        shutil.copytree(ROOT, directory, ignore=COPY_IGNORED)
        (directory / ".venv").symlink_to(ROOT / ".venv")
        (base / "backend").mkdir()
        env = {
            "PULUMI_BACKEND_URL": f"file://{base / 'backend'}",
            "PULUMI_CONFIG_PASSPHRASE": "end-to-end-only",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        }
        return cls(directory, env)

    def write_config(self, name: str, config: Mapping[str, Any]) -> Path:
        """Stack `name`'s file holding exactly `config` (keys without the project prefix)."""
        path = self.directory / f"Pulumi.{name}.yaml"
        settings = {"config": {f"{PROJECT}:{key}": value for key, value in config.items()}}
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
        return path

    def stack(self, name: str, config: Mapping[str, Any]) -> auto.Stack:
        """Stack `name` with exactly `config`, in the project's own backend."""
        self.write_config(name, config)
        options = auto.LocalWorkspaceOptions(env_vars=dict(self.env))
        return auto.create_or_select_stack(stack_name=name, work_dir=str(self.directory), opts=options)


def stack_config(stack: str) -> dict[str, Any]:
    """A repository stack's config, keys without the project prefix."""
    values = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in values.items()}


def up(stack: auto.Stack) -> dict[str, Any]:
    stack.up(on_output=print, color="never")
    return {key: value.value for key, value in stack.outputs().items()}


def check(outputs: dict[str, Any], leg: str, **urls: str | None) -> list[Result]:
    """`verify` on the outputs (`urls`: elasticsearch_url, kibana_url where the outputs' are not
    reachable from here); its lines go to E2E_ARTIFACTS for the workflow to upload."""
    results = verify(deployment(outputs, urls.get("elasticsearch_url"), urls.get("kibana_url")))
    artifacts = Path(os.environ.get("E2E_ARTIFACTS", "e2e-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with (artifacts / f"verify-{leg}.txt").open("a") as log:
        log.writelines(result.line() + "\n" for result in results)
    return results


def failures(results: list[Result]) -> list[str]:
    return [result.line() for result in results if not result.ok]


def request(outputs: Mapping[str, Any], method: str, path: str, body: Any = None, url: str | None = None) -> Any:
    """A request to Elasticsearch as `elastic`, trusting the exported CA alone."""
    context = ssl.create_default_context(cadata=str(outputs["ca_certificate"]))
    token = base64.b64encode(f"elastic:{outputs['elastic_password']}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    target = (url or str(outputs["elasticsearch_url"])).rstrip("/") + path
    http_request = urllib.request.Request(target, data=data, method=method, headers=headers)
    with urllib.request.urlopen(http_request, timeout=60, context=context) as response:
        return json.loads(response.read())


def docker(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *arguments], capture_output=True, text=True, check=check, timeout=300)
