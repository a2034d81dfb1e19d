"""Kubernetes object parts written as plain dicts, and the pulumi-kubernetes behaviour they rely on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# pulumi-kubernetes (provider/pkg/metadata/annotations.go) reads these annotations on an object.
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"
REPLACE_UNREADY_ANNOTATION = "pulumi.com/replaceUnready"
PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce"
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"
PSA_LEVELS = ("enforce", "audit", "warn")


def manifest(part: Mapping[str, Any]) -> Any:
    """A metadata or spec dict for pulumi-kubernetes. The tests validate every rendered object against
    the Kubernetes OpenAPI schema in strict mode (kubernetes-validate), which checks more than the
    SDK's TypedDicts would."""
    return part


def await_timeout(seconds: int) -> dict[str, str]:
    """How long pulumi-kubernetes waits for the object to become ready (its default is 10 minutes for every
    kind: provider/pkg/await/await.go)."""
    return {TIMEOUT_ANNOTATION: str(seconds)}


def pod_security_labels(level: str) -> dict[str, str]:
    """Pod Security Admission labels (kubernetes/pod-security-admission `api/constants.go`) for a namespace."""
    labels = {}
    for mode in PSA_LEVELS:
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return labels
