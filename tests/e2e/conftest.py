"""The end-to-end legs need real tools: each is skipped, with the reason, where one is missing (as on a
machine without Docker), unless E2E_REQUIRED is set (the workflow sets it: there a missing tool is a
failure, not a skip)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.deploy import Project


def unavailable(reason: str) -> None:
    if os.environ.get("E2E_REQUIRED"):
        pytest.fail(f"E2E_REQUIRED is set, but {reason}")
    pytest.skip(reason)


def works(*command: str) -> bool:
    try:
        return subprocess.run(command, capture_output=True, check=False, timeout=60).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def pulumi_cli() -> None:
    if shutil.which("pulumi") is None:
        unavailable("the pulumi CLI is not installed (https://www.pulumi.com/docs/install/)")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if shutil.which("docker") is None:
        unavailable("the docker CLI is not installed")
    if not works("docker", "info"):
        unavailable("no Docker engine answers `docker info`")


@pytest.fixture(scope="session")
def kind_tools() -> None:
    for tool in ("kind", "kubectl"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed")


@pytest.fixture
def project(pulumi_cli: None) -> Iterator[Project]:
    base = Path(tempfile.mkdtemp(prefix="escluster-e2e-"))
    try:
        yield Project.create(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
