"""Kubernetes object parts written as plain dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def manifest(part: Mapping[str, Any]) -> Any:
    """A metadata or spec dict for pulumi-kubernetes. The tests validate every rendered object against
    the Kubernetes OpenAPI schema in strict mode (kubernetes-validate), which checks more than the
    SDK's TypedDicts would."""
    return part
