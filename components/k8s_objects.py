"""Kubernetes object parts written as plain dicts."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def manifest(part: Mapping[str, Any]) -> Any:
    """A metadata or spec dict for pulumi-kubernetes. The tests validate every rendered object against
    the Kubernetes OpenAPI schema in strict mode (kubernetes-validate), which checks more than the
    SDK's TypedDicts would."""
    return part


# Pods mount their settings with subPath, which never sees a ConfigMap update: a hash of the content
# in the pod template makes a settings change roll the pods (the helm chart's `configchecksum`).
CONFIG_HASH_ANNOTATION = "escluster/config-hash"


def config_hash(*contents: str) -> str:
    digest = hashlib.sha256()
    for content in contents:
        digest.update(content.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
