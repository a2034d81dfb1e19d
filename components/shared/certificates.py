"""ClusterCertificates: the cluster CAs and one certificate per node, made with pulumi-tls.

They are Pulumi resources, not a container the nodes wait for, so every ES node starts at once. In their
last 30 days (`early_renewal_hours`) a certificate is made anew: a renewed CA keeps its key, so
certificates it signed before still chain to it; a node certificate renewed restarts only its node.
A new CA key (`security.ca_generation`) goes through the three steps of escluster.changes.CaPlan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_command as command
import pulumi_tls as tls

from components import component_type
from escluster.changes import CaPlan
from escluster.security import CERT_RENEWAL_DAYS

KEY_ALGORITHM = "RSA"
RSA_BITS = 3072
# `pulumi up` within this window of expiry issues a new certificate.
EARLY_RENEWAL_HOURS = CERT_RENEWAL_DAYS * 24


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


# A check of the running cluster against a CA certificate: (resource name, the CA's PEM, parent) -> the
# resource that runs it; an `up` goes on only if it passes.
CaCheck = Callable[[str, pulumi.Output[str], pulumi.Resource], command.local.Command]


@dataclass(frozen=True)
class CaChecks:
    """What a target checks during a CA rotation. `issuer` (step 3): every node presents a certificate
    from the new CA; the trust bundle without the old CA exists only once it passed. `trust` (step 2,
    where a bundle reaches running nodes later than the `up` that changed it): every node trusts the new
    CA; the certificates it signed exist only once it passed."""

    issuer: CaCheck
    trust: CaCheck | None = None


def after(check: command.local.Command | None, value: pulumi.Output[str]) -> pulumi.Output[str]:
    """`value`, known only once `check` ran: whatever reads it waits for the check (a dependency Pulumi
    derives from the Output), and a preview shows it unknown whenever the check is to run (its output is
    unknown then; its id would be known on an update)."""
    if check is None:
        return value
    return pulumi.Output.all(pulumi.Output.unsecret(check.stdout), value).apply(lambda values: str(values[1]))


def trust_bundle(pems: Sequence[str]) -> str:
    """Several CA certificates as one PEM file, each whole on its own lines: Elasticsearch reads every
    certificate of each `certificate_authorities` file, Kibana and curl every one of a PEM file
    (tests/contracts/test_trust_bundles.py)."""
    return "".join(pem if pem.endswith("\n") else pem + "\n" for pem in pems)


class ClusterCertificates(pulumi.ComponentResource):
    # Every CA certificate the nodes, Kibana and clients must trust (escluster.changes.CaPlan), one PEM file.
    ca_cert_pem: pulumi.Output[str]
    # The CA that signs the node certificates.
    issuing_ca_pem: pulumi.Output[str]
    node_certificates: dict[str, IssuedCertificate]
    # When each certificate expires (RFC 3339): {"ca": {generation: time}, "nodes": {name: time}}.
    expiry: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        name: str,
        cluster_name: str,
        nodes: Sequence[CertificateSubject],
        validity_hours: int,
        *,
        ca: CaPlan,
        checks: CaChecks,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(component_type("ClusterCertificates"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        authorities: dict[int, tuple[tls.PrivateKey, tls.SelfSignedCert]] = {}
        for generation in ca.trusted:
            # Generation 1 keeps the names it always had; later ones are new resources beside it.
            suffix = "" if generation == 1 else f"-{generation}"
            ca_key = tls.PrivateKey(f"{name}-ca-key{suffix}", algorithm=KEY_ALGORITHM, rsa_bits=RSA_BITS, opts=child)
            ca_cert = tls.SelfSignedCert(
                f"{name}-ca{suffix}",
                private_key_pem=ca_key.private_key_pem,
                is_ca_certificate=True,
                subject=tls.SelfSignedCertSubjectArgs(common_name=f"{cluster_name} CA{suffix.replace('-', ' ')}"),
                validity_period_hours=validity_hours,
                early_renewal_hours=EARLY_RENEWAL_HOURS,
                allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
                opts=child,
            )
            authorities[generation] = (ca_key, ca_cert)
        self.ca_cert_pem = pulumi.Output.all(*(authorities[g][1].cert_pem for g in ca.trusted)).apply(trust_bundle)
        issuing_key, issuing_cert = authorities[ca.issuing]
        self.issuing_ca_pem = issuing_cert.cert_pem
        if ca.drop_after_check:
            self.ca_cert_pem = after(checks.issuer(f"{name}-issuer-check", self.issuing_ca_pem, self), self.ca_cert_pem)
        trust_check = None
        if ca.reissuing and checks.trust is not None:
            trust_check = checks.trust(f"{name}-trust-check", self.issuing_ca_pem, self)
        self.node_certificates = {}
        node_expiry: dict[str, pulumi.Output[str]] = {}
        for node in nodes:
            # A new CA key (a rotation, e.g. after a leak) comes with new node keys: the old ones sat in the
            # same state. Generation 1 keeps the name it always had.
            key_name = f"{node.name}-key" if ca.issuing == 1 else f"{node.name}-key-g{ca.issuing}"
            key = tls.PrivateKey(key_name, algorithm=KEY_ALGORITHM, rsa_bits=RSA_BITS, opts=child)
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
                ca_private_key_pem=issuing_key.private_key_pem,
                ca_cert_pem=issuing_cert.cert_pem,
                validity_period_hours=validity_hours,
                early_renewal_hours=EARLY_RENEWAL_HOURS,
                allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"],
                opts=child,
            )
            self.node_certificates[node.name] = IssuedCertificate(
                cert_pem=after(trust_check, cert.cert_pem),
                key_pem=pulumi.Output.secret(after(trust_check, key.private_key_pem)),
            )
            node_expiry[node.name] = cert.validity_end_time
        self.expiry = pulumi.Output.from_input(
            {
                "ca": {str(g): authorities[g][1].validity_end_time for g in ca.trusted},
                "nodes": node_expiry,
            }
        )
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem})
