"""ClusterCertificates: the cluster CA and one certificate per node, made with pulumi-tls.

They are Pulumi resources, not a container the nodes wait for, so every ES node starts at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_tls as tls

from components import component_type

KEY_ALGORITHM = "RSA"
RSA_BITS = 3072
# `pulumi up` within this window of expiry issues a new certificate.
EARLY_RENEWAL_HOURS = 30 * 24


class CertificateSubject(Protocol):
    """A node or pod: its name and every name and address clients reach it by."""

    @property
    def name(self) -> str: ...
    @property
    def dns_names(self) -> tuple[str, ...]: ...
    @property
    def ip_addresses(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class IssuedCertificate:
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]


class ClusterCertificates(pulumi.ComponentResource):
    ca_cert_pem: pulumi.Output[str]
    node_certificates: dict[str, IssuedCertificate]

    def __init__(
        self,
        name: str,
        cluster_name: str,
        nodes: Sequence[CertificateSubject],
        validity_hours: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(component_type("ClusterCertificates"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm=KEY_ALGORITHM, rsa_bits=RSA_BITS, opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{cluster_name} CA"),
            validity_period_hours=validity_hours,
            early_renewal_hours=EARLY_RENEWAL_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=child,
        )
        self.ca_cert_pem = ca.cert_pem
        self.node_certificates = {}
        for node in nodes:
            key = tls.PrivateKey(f"{node.name}-key", algorithm=KEY_ALGORITHM, rsa_bits=RSA_BITS, opts=child)
            request = tls.CertRequest(
                f"{node.name}-csr",
                private_key_pem=key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(common_name=node.name),
                dns_names=list(node.dns_names),
                ip_addresses=list(node.ip_addresses),
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{node.name}-cert",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem,
                ca_cert_pem=ca.cert_pem,
                validity_period_hours=validity_hours,
                early_renewal_hours=EARLY_RENEWAL_HOURS,
                allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"],
                opts=child,
            )
            self.node_certificates[node.name] = IssuedCertificate(
                cert_pem=cert.cert_pem, key_pem=pulumi.Output.secret(key.private_key_pem)
            )
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem})
