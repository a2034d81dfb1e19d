"""Shared fixtures: one mocks render per example stack, reused by every test that reads it."""

from __future__ import annotations

import os
from functools import cache

import pytest

from tests.fake_kubectl import tools
from tests.harness import Render, render, stacks_of_target

__all__ = ["tools"]  # a fixture for every test module

# A developer's shell may carry a real stack's config; the mocks runs must see only their own.
for variable in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS", "DOCKER_HOST"):
    os.environ.pop(variable, None)


@cache
def rendered(stack: str) -> Render:
    return render(stack)


@pytest.fixture(params=stacks_of_target("docker"))
def stack_render(request: pytest.FixtureRequest) -> Render:
    """Each example stack of the docker target (one engine or across hosts)."""
    return rendered(str(request.param))
