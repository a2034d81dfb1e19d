"""One module per target: each composes the components for a validated plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi


@dataclass(frozen=True)
class StackOutputs:
    elasticsearch_url: str | None
    kibana_url: str
    ca_certificate: pulumi.Output[str]
    elastic_password: pulumi.Output[str]
    # Resolves once every step of this run on the cluster passed: the setup step (passwords set on the
    # formed cluster), every drain, prepare, gate, roll and certificate check, and Kibana (whose version the
    # state records). A failed one leaves it unresolved, so the stack keeps the state of its last complete `up`.
    settled: pulumi.Output[Any]
    # Nodes earlier runs removed that the cluster still lists (Pulumi could not delete them).
    still_listed: pulumi.Output[tuple[str, ...]]
    # When each certificate expires (ClusterCertificates.expiry).
    certificate_expiry: pulumi.Output[dict[str, Any]]
