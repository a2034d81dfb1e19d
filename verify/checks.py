"""The checks `verify` runs against a deployed cluster: each compares what the cluster answers with what
its stack's outputs say it is (the URLs, the exported CA, the `elastic` password, `cluster_state`,
`certificate_expiry`). Standard library only: it runs wherever the stack does."""

from __future__ import annotations

import base64
import datetime
import http.client
import ipaddress
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from escluster.security import CERT_RENEWAL_DAYS
from escluster.state import ClusterState

RENEWAL_DAYS = CERT_RENEWAL_DAYS  # pulumi-tls issues a certificate anew in its last days (early_renewal_hours)
TIMEOUT_SECONDS = 15
TRANSPORT_SSL = "xpack.security.transport.ssl"
INITIAL_MASTER_NODES = "cluster.initial_master_nodes"


@dataclass(frozen=True)
class Deployment:
    """What the stack says: where to reach it, what to trust, and what it should be."""

    elasticsearch_url: str
    kibana_url: str | None
    ca_pem: str
    elastic_password: str
    state: ClusterState
    certificate_expiry: Mapping[str, Any]


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check}: {self.detail}"


class Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Client:
    """HTTP(S) with the exported CA as the only trust, the host's name checked, `elastic` as the user."""

    def __init__(self, deployment: Deployment) -> None:
        self.context = ssl.create_default_context(cadata=deployment.ca_pem)
        token = base64.b64encode(f"elastic:{deployment.elastic_password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}

    def get(self, url: str) -> Answer:
        if not sends_credentials_safely(url):
            raise ValueError(
                f"not sending the elastic password over plain HTTP to {urlsplit(url).hostname}; give the URL through a "
                "tunnel on this machine (kubectl port-forward, ssh -L), e.g. --kibana-url http://localhost:5601"
            )
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        # Not carried over to a redirect's URL, which the check above never saw (urllib copies headers).
        request.add_unredirected_header("Authorization", self.headers["Authorization"])
        context = self.context if url.startswith("https:") else None
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context) as response:
                return Answer(response.status, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read())


def sends_credentials_safely(url: str) -> bool:
    """HTTPS (checked against the exported CA), or plain HTTP to this machine only (a tunnel)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = (parts.hostname or "").lower()
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def verify(deployment: Deployment, now: datetime.datetime | None = None) -> list[Result]:
    """Every check, in order; nothing after HTTPS runs when the cluster cannot be reached safely."""
    now = now or datetime.datetime.now(datetime.UTC)
    https = check_https(deployment, now)
    if not https.ok:
        return [https]
    client = Client(deployment)
    es = deployment.elasticsearch_url.rstrip("/")
    checks: list[tuple[str, Callable[[], Result]]] = [
        ("health", lambda: check_cluster(client, es, deployment.state)),
        ("nodes", lambda: check_nodes(client, es, deployment.state)),
        ("node settings", lambda: check_node_settings(client, es, deployment.state)),
        ("kibana_system", lambda: check_kibana_user(client, es)),
        ("kibana", lambda: check_kibana(client, deployment.kibana_url)),
        ("certificates", lambda: check_expiry(deployment.certificate_expiry, now)),
    ]
    results = [https]
    for name, check in checks:
        try:
            results.append(check())
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as error:
            results.append(Result(name, False, f"{type(error).__name__}: {error}"))
    return results


def check_https(deployment: Deployment, now: datetime.datetime) -> Result:
    """A TLS handshake trusting the exported CA alone, with the URL's host checked against the names the
    certificate carries."""
    url = urlsplit(deployment.elasticsearch_url)
    host, port = url.hostname or "", url.port or 443
    context = ssl.create_default_context(cadata=deployment.ca_pem)
    try:
        with (
            socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            certificate: dict[str, Any] = dict(tls.getpeercert() or {})
    except ssl.SSLCertVerificationError as error:
        return Result(
            "https",
            False,
            f"{host}:{port} does not present a certificate for it from the exported CA: {error.verify_message}",
        )
    except OSError as error:
        return Result("https", False, f"{host}:{port} does not answer: {error}")
    subject = _name(certificate.get("subject", ()))
    issuer = _name(certificate.get("issuer", ()))
    names = ", ".join(str(entry[1]) for entry in certificate.get("subjectAltName", ()))
    not_after = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(str(certificate["notAfter"])), datetime.UTC)
    days = (not_after - now).days
    return Result("https", True, f"{host}:{port} presents {subject} ({names}) from {issuer}, {days} days left")


def _name(parts: Any) -> str:
    """A certificate name as its common name (what pulumi-tls sets), else in full."""
    attributes = [(str(key), str(value)) for part in parts for key, value in part]
    common = [value for key, value in attributes if key == "commonName"]
    return common[0] if common else ", ".join(f"{key}={value}" for key, value in attributes)


def check_cluster(client: Client, es: str, state: ClusterState) -> Result:
    answer = client.get(f"{es}/_cluster/health")
    if answer.status != 200:
        return Result("health", False, f"HTTP {answer.status} for _cluster/health: {answer.body[:200]!r}")
    health = answer.json()
    name, status = health["cluster_name"], health["status"]
    detail = (
        f"cluster {name} is {status} ({health['number_of_nodes']} nodes; unassigned shards "
        f"{health['unassigned_shards']}, initializing {health['initializing_shards']}, relocating "
        f"{health['relocating_shards']})"
    )
    if name != state.cluster_name:
        return Result("health", False, f"{detail}; the stack's cluster is {state.cluster_name}")
    return Result("health", status == "green", detail)


def check_nodes(client: Client, es: str, state: ClusterState) -> Result:
    """Exactly the plan's nodes, each with exactly its roles: a missing node, an extra one, or nodes that
    formed a cluster of their own (seen from here as missing) fail."""
    answer = client.get(f"{es}/_nodes?filter_path=nodes.*.name,nodes.*.roles")
    if answer.status != 200:
        return Result("nodes", False, f"HTTP {answer.status} for _nodes")
    running = {node["name"]: sorted(node["roles"]) for node in answer.json()["nodes"].values()}
    planned = {name: sorted(roles) for name, roles in state.nodes.items()}
    problems = [f"{name} is not in the cluster" for name in sorted(set(planned) - set(running))]
    problems += [f"{name} is in the cluster but not in the stack" for name in sorted(set(running) - set(planned))]
    problems += [
        f"{name} has roles {running[name]}, the stack gives it {planned[name]}"
        for name in sorted(set(planned) & set(running))
        if running[name] != planned[name]
    ]
    if problems:
        return Result("nodes", False, "; ".join(problems))
    return Result("nodes", True, f"{len(running)} nodes, each with the stack's roles")


def check_node_settings(client: Client, es: str, state: ClusterState) -> Result:
    """Transport TLS on, verifying peers, on every node; `cluster.initial_master_nodes` on exactly the
    nodes the stack's last run left it on (none once the cluster formed and the next `up` ran)."""
    # filter_path splits on every dot and never matches flat_settings' dotted keys (elastic/elasticsearch
    # FilterPath; #43290): filter on `settings` whole, then read its flat keys.
    answer = client.get(f"{es}/_nodes/settings?flat_settings=true&filter_path=nodes.*.name,nodes.*.settings")
    if answer.status != 200:
        return Result("node settings", False, f"HTTP {answer.status} for _nodes/settings")
    problems, carrying = [], set()
    for node in answer.json()["nodes"].values():
        settings = node.get("settings", {})
        if settings.get(f"{TRANSPORT_SSL}.enabled") != "true":
            problems.append(f"{node['name']}: transport TLS is off")
        elif settings.get(f"{TRANSPORT_SSL}.verification_mode", "full") not in ("full", "certificate"):
            problems.append(f"{node['name']}: transport TLS does not verify its peers")
        if any(key == INITIAL_MASTER_NODES or key.startswith(f"{INITIAL_MASTER_NODES}.") for key in settings):
            carrying.add(node["name"])
    expected = set(state.bootstrap_nodes)
    if extra := sorted(carrying - expected):
        problems.append(f"{', '.join(extra)} still name {INITIAL_MASTER_NODES} on a formed cluster")
    if problems:
        return Result("node settings", False, "; ".join(problems))
    note = f"; {', '.join(sorted(carrying))} drop {INITIAL_MASTER_NODES} on the next `pulumi up`" if carrying else ""
    return Result("node settings", True, f"transport TLS on and verifying on every node{note}")


def check_kibana_user(client: Client, es: str) -> Result:
    answer = client.get(f"{es}/_security/user/kibana_system")
    if answer.status != 200:
        return Result("kibana_system", False, f"HTTP {answer.status} for the kibana_system user")
    user = answer.json().get("kibana_system", {})
    return Result(
        "kibana_system",
        bool(user.get("enabled")),
        f"the kibana_system user is {'enabled' if user.get('enabled') else 'disabled'}",
    )


def check_kibana(client: Client, kibana_url: str | None) -> Result:
    """Kibana's status: available overall, and its Elasticsearch service available, which it is only once
    it has authenticated as the user of its `kibana.yml` (`kibana_system`)."""
    if not kibana_url:
        return Result("kibana", False, "no Kibana URL (give --kibana-url)")
    answer = client.get(f"{kibana_url.rstrip('/')}/api/status")
    if answer.status not in (200, 503):
        return Result("kibana", False, f"HTTP {answer.status} for {kibana_url}/api/status")
    try:
        status = answer.json()["status"]
    except (ValueError, KeyError, TypeError):
        return Result("kibana", False, f"HTTP {answer.status} from {kibana_url}/api/status: Kibana is not ready")
    overall = status["overall"]["level"]
    elasticsearch = status["core"]["elasticsearch"]
    detail = f"Kibana is {overall}; its Elasticsearch connection is {elasticsearch['level']}"
    if elasticsearch["level"] != "available":
        detail += f" ({elasticsearch.get('summary', '')})"
    return Result("kibana", overall == "available" and elasticsearch["level"] == "available", detail)


def check_expiry(expiry: Mapping[str, Any], now: datetime.datetime) -> Result:
    """Days to each certificate's expiry; inside the renewal window an `up` should have renewed it."""
    ends = {f"CA {generation}": end for generation, end in (expiry.get("ca") or {}).items()}
    ends |= dict((expiry.get("nodes") or {}).items())
    if not ends:
        return Result("certificates", False, "the stack exports no certificate_expiry")
    days = {name: (datetime.datetime.fromisoformat(str(end)) - now).days for name, end in ends.items()}
    soonest = min(days, key=lambda name: days[name])
    due = sorted(name for name, left in days.items() if left < RENEWAL_DAYS)
    if due:
        return Result(
            "certificates",
            False,
            f"{', '.join(due)} expire within {RENEWAL_DAYS} days ({soonest}: {days[soonest]} days); "
            "run `pulumi up` to renew them",
        )
    return Result(
        "certificates", True, f"{len(days)} certificates; the first to expire, {soonest}, in {days[soonest]} days"
    )
