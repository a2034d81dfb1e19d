"""Runtime contract: what Elasticsearch, Kibana and curl accept as a trust bundle, run in the real
runtimes (the JDK, Node.js, curl) with real certificates.

- Elasticsearch (elastic/elasticsearch libs/ssl-config `PemTrustConfig.createTrustManager`): every
  certificate `CertificateFactory.generateCertificates` reads from each `certificate_authorities` file
  (`PemUtils.readCertificates`) becomes a trusted entry of a key store behind the PKIX trust manager
  (`KeyStoreUtil.buildTrustStore`, `createTrustManager`); tests/contracts/data/TrustCheck.java does the
  same in a JVM. It reloads the files when they change (`SSLConfigurationReloader`).
- Kibana (elastic/kibana `elasticsearch_config.ts` `readKeyAndCerts`): each `ssl.certificateAuthorities`
  file is read whole (`readFileSync(path, 'utf8')`) into the client's `ca` list, which Node's TLS reads as
  every PEM certificate in each string (nodejs `tls.createSecureContext`, `ca`).
- The setup step and the roll's tasks: `curl --cacert FILE` (OpenSSL, every certificate of the file).

The bundles are made by `components.shared.certificates.trust_bundle`, as the program makes them. The properties
the CA rotation rests on (tests/test_certificates.py): a bundle of two CAs trusts what either signed; a
CA renewed from the same key and subject trusts what the old one signed; another key under the same
subject does not.
"""

from __future__ import annotations

import datetime
import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from components.shared.certificates import trust_bundle

TRUST_CHECK = Path(__file__).parent / "data" / "TrustCheck.java"
NOW = datetime.datetime.now(datetime.UTC)

# Kibana's client, reduced to its TLS options: `ca` as a list of file contents.
NODE_CLIENT = """
const tls = require('tls'), fs = require('fs');
const [bundle, port] = process.argv.slice(1);
const socket = tls.connect({host: 'localhost', port: Number(port), servername: 'localhost',
                            ca: [fs.readFileSync(bundle, 'utf8')]}, () => {
  console.log(socket.authorized ? 'trusted' : 'refused: ' + socket.authorizationError);
  socket.end();
});
socket.on('error', (error) => console.log('refused: ' + error.code));
"""


@dataclass(frozen=True)
class Authority:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def authority(subject: str, key: rsa.RSAPrivateKey | None = None, days: int = 365) -> Authority:
    """A CA as pulumi-tls makes one (terraform-provider-tls on Go's x509, which gives a CA a subject key
    identifier from its public key, and what it signs the matching authority key identifier)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


@dataclass(frozen=True)
class Node:
    key_pem: str
    cert_pem: str


def node_certificate(issuer: Authority) -> Node:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "es-0")]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return Node(key_pem, cert.public_bytes(serialization.Encoding.PEM).decode())


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def serving(node: Node, directory: Path) -> Iterator[int]:
    """An HTTPS server on localhost presenting the node's certificate: its port."""
    (directory / "node.crt").write_text(node.cert_pem)
    (directory / "node.key").write_text(node.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "node.crt", directory / "node.key")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="escluster-trust-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def elasticsearch_trusts(bundle: str, node: Node, directory: Path) -> str:
    (directory / "bundle.crt").write_text(bundle)
    (directory / "peer.crt").write_text(node.cert_pem)
    result = subprocess.run(
        ["java", str(TRUST_CHECK), str(directory / "bundle.crt"), str(directory / "peer.crt")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        return f"unreadable: {result.stderr.strip().splitlines()[0]}"
    read, verdict = result.stdout.strip().splitlines()
    return f"{read}; {verdict}"


def kibana_trusts(bundle: str, node: Node, directory: Path) -> str:
    (directory / "bundle.crt").write_text(bundle)
    with serving(node, directory) as port:
        result = subprocess.run(
            ["node", "-e", NODE_CLIENT, str(directory / "bundle.crt"), str(port)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    return result.stdout.strip()


def curl_trusts(bundle: str, node: Node, directory: Path) -> str:
    (directory / "bundle.crt").write_text(bundle)
    with serving(node, directory) as port:
        result = subprocess.run(
            [
                "curl",
                "--silent",
                "--output",
                "/dev/null",
                "--write-out",
                "%{http_code}",
                "--cacert",
                str(directory / "bundle.crt"),
                f"https://localhost:{port}/",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    return "trusted" if result.stdout == "401" else f"refused: exit {result.returncode}"


def test_elasticsearch_trusts_what_any_ca_of_the_bundle_signed(directory: Path) -> None:
    old, new = authority("c CA"), authority("c CA 2")
    bundle = trust_bundle([old.pem, new.pem])
    assert elasticsearch_trusts(bundle, node_certificate(old), directory) == "read 2; trusted"
    assert elasticsearch_trusts(bundle, node_certificate(new), directory) == "read 2; trusted"


def test_elasticsearch_refuses_what_a_ca_outside_the_bundle_signed(directory: Path) -> None:
    old, new = authority("c CA"), authority("c CA 2")
    verdict = elasticsearch_trusts(trust_bundle([new.pem]), node_certificate(old), directory)
    assert verdict.startswith("read 1; refused:")


def test_elasticsearch_trusts_through_a_ca_renewed_from_the_same_key(directory: Path) -> None:
    """pulumi-tls renews a SelfSignedCert from the same PrivateKey (ECK's renewCAFromExisting too)."""
    old = authority("c CA", days=20)
    renewed = authority("c CA", key=old.key, days=1095)
    assert elasticsearch_trusts(trust_bundle([renewed.pem]), node_certificate(old), directory) == "read 1; trusted"
    other_key = authority("c CA")
    verdict = elasticsearch_trusts(trust_bundle([other_key.pem]), node_certificate(old), directory)
    assert verdict.startswith("read 1; refused:"), "the same subject with another key must not be trusted"


def test_kibana_trusts_what_any_ca_of_the_bundle_signed(directory: Path) -> None:
    old, new, outside = authority("c CA"), authority("c CA 2"), authority("c CA 3")
    bundle = trust_bundle([old.pem, new.pem])
    assert kibana_trusts(bundle, node_certificate(old), directory) == "trusted"
    assert kibana_trusts(bundle, node_certificate(new), directory) == "trusted"
    assert kibana_trusts(bundle, node_certificate(outside), directory).startswith("refused:")


def test_kibana_trusts_through_a_ca_renewed_from_the_same_key(directory: Path) -> None:
    old = authority("c CA", days=20)
    renewed = authority("c CA", key=old.key)
    assert kibana_trusts(trust_bundle([renewed.pem]), node_certificate(old), directory) == "trusted"


def test_curl_trusts_what_any_ca_of_the_bundle_signed(directory: Path) -> None:
    old, new, outside = authority("c CA"), authority("c CA 2"), authority("c CA 3")
    bundle = trust_bundle([old.pem, new.pem])
    assert curl_trusts(bundle, node_certificate(old), directory) == "trusted"
    assert curl_trusts(bundle, node_certificate(new), directory) == "trusted"
    assert curl_trusts(bundle, node_certificate(outside), directory).startswith("refused:")


def test_the_bundle_keeps_certificates_apart_when_a_pem_lacks_its_last_newline(directory: Path) -> None:
    """Glued together ("-----END CERTIFICATE----------BEGIN"), the JDK cannot read the file."""
    old, new = authority("c CA"), authority("c CA 2")
    bundle = trust_bundle([old.pem.rstrip("\n"), new.pem])
    assert elasticsearch_trusts(bundle, node_certificate(new), directory) == "read 2; trusted"
    glued = old.pem.rstrip("\n") + new.pem
    assert elasticsearch_trusts(glued, node_certificate(new), directory).startswith("unreadable:")
