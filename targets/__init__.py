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
    # Resolves once the setup step has set the passwords on the formed cluster.
    setup_done: pulumi.Output[Any]
    # When each certificate expires (ClusterCertificates.expiry).
    certificate_expiry: pulumi.Output[dict[str, Any]]
