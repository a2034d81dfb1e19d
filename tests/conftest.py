"""Shared fixtures: one mocks render per example stack, reused by every test that reads it."""

from __future__ import annotations

import os
from functools import cache

import pytest

from tests.harness import Render, render, stacks_in_repo

# A developer's shell may carry a real stack's config; the mocks runs must see only their own.
for variable in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS"):
    os.environ.pop(variable, None)


@cache
def rendered(stack: str) -> Render:
    return render(stack)


@pytest.fixture(params=stacks_in_repo())
def stack_render(request: pytest.FixtureRequest) -> Render:
    return rendered(str(request.param))
