"""The end-to-end legs' configs (tests/e2e/legs.py) and their project copy, checked here where no engine
runs: each renders under the mocks and keeps its target's rules, so a leg that fails on a real engine
fails for the engine's reasons, not for a config the program refuses."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import rules, rules_k8s, rules_swarm
from tests.e2e import legs
from tests.e2e.deploy import Project
from tests.harness import PROJECT, ROOT, Render, render

LEGS: dict[str, Callable[[], dict[str, Any]]] = {
    "dev": legs.dev,
    "dev-heap": lambda: legs.dev(heap="768m"),
    "swarm": lambda: legs.swarm("runner-host"),
    "kind": lambda: legs.kind(
        "kind-escluster-e2e", "172.18.255.205-172.18.255.254", "172.18.255.205", "172.18.255.206"
    ),
}


def prefixed(config: dict[str, Any]) -> dict[str, Any]:
    return {f"{PROJECT}:{key}": value for key, value in config.items()}


@pytest.mark.parametrize("leg", LEGS)
def test_each_leg_renders_and_keeps_its_targets_rules(leg: str) -> None:
    config = prefixed(LEGS[leg]())
    result = render(f"e2e-{leg}", config)
    target = config.get(f"{PROJECT}:target", "docker")
    by_target: dict[str, Mapping[str, Callable[[Render], None]]] = {
        "docker": rules.DOCKER_RULES,
        "swarm": rules_swarm.SWARM_RULES,
        "kubernetes": rules_k8s.K8S_RULES,
    }
    checks = by_target[target]
    for check in checks.values():
        check(result)
    assert result.outputs["cluster_state"]["cluster_name"].startswith("e2e")


def test_the_dev_leg_changes_the_heap_only() -> None:
    before, after = legs.dev(), legs.dev(heap="768m")
    assert before["cluster"]["node_groups"][0].get("heap") is None
    assert after["cluster"]["node_groups"][0]["heap"] == "768m"
    assert {k: v for k, v in before.items() if k != "cluster"} == {k: v for k, v in after.items() if k != "cluster"}


def test_the_project_copy_stands_alone_and_writes_the_stack_file() -> None:
    base = Path(tempfile.mkdtemp(prefix="escluster-e2e-test-"))
    try:
        project = Project.create(base)
        assert (project.directory / "__main__.py").exists() and not (project.directory / ".git").exists()
        assert (project.directory / ".venv").resolve() == (ROOT / ".venv").resolve()
        assert project.env["PULUMI_BACKEND_URL"] == f"file://{base / 'backend'}"
        written = yaml.safe_load(project.write_config("e2e-dev", legs.dev()).read_text())
        assert written == {"config": prefixed(legs.dev())}
    finally:
        shutil.rmtree(base)
