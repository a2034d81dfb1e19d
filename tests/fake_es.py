"""A fake Elasticsearch (and Kibana) HTTP server for running our scripts against, over real TLS.

It answers the way Elasticsearch does where our scripts look:
- without credentials, 401 with the security plugin's "missing authentication credentials" reason
  (x-pack security `DefaultAuthenticationFailureHandler`), and `WWW-Authenticate: Basic`;
- wrong credentials, 401; a user without the privilege, 403;
- `GET /`: the node and cluster (`cluster_uuid` is `_na_` until the cluster has formed);
- `POST|PUT /_security/user/<name>/_password`: needs manage_security (our admin is a superuser);
  503 while there is no elected master;
- `GET /_cluster/health`: needs `monitor`; with `wait_for_status` it answers 408 and `timed_out: true`
  when the status is worse after the timeout (it does not wait here);
- `GET /_cat/nodes?h=name`, `GET /_cat/shards?h=node`: one value per line, no header (`RestTable`); a
  relocating shard's node reads `from -> ip id to`;
- `GET|PUT /_cluster/settings` (persistent, `flat_settings`), `POST /_flush`, `POST|DELETE
  /_cluster/voting_config_exclusions`: need superuser.
The cluster moves on as it is asked: a node excluded from allocation loses `drain_per_poll` shards each
time its shards are listed (0: it never drains); health turns green after `green_after` polls once
allocation is enabled again (None: it stays as it is); a node in `absent_for` is missing from the node
list for that many polls (a restart). A query parameter the real handler does not read is refused with
400, as BaseRestHandler does. Every request is recorded. The certificate comes from a test CA (trustme,
or one given) and names every host given.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

STATUS_ORDER = {"red": 0, "yellow": 1, "green": 2}
# The query parameters each REST handler reads (elastic/elasticsearch rest/action/.../Rest*Action.java
# prepareRequest, and the request's common ones): BaseRestHandler answers 400 to any other
# ("contains unrecognized parameter"), as the fake does.
COMMON_PARAMETERS = {"pretty", "human", "error_trace", "filter_path"}


def filter_path(value: Any, paths: list[list[str]]) -> Any:
    """`filter_path` as Elasticsearch applies it to a response: each filter split on every `.`, `*` for any
    one field name, a field kept when a whole filter matched down to it. A field whose name holds dots
    (the keys of `flat_settings`) is never matched by a dotted filter (elastic/elasticsearch libs/x-content
    FilterPath.compile; responses are filtered with matchFieldNamesWithDots=false)."""
    if isinstance(value, list):
        items = [filter_path(item, paths) for item in value]
        return [item for item in items if item not in (None, {}, [])]
    if not isinstance(value, Mapping):
        return None
    kept: dict[str, Any] = {}
    for key, item in value.items():
        rests = [path[1:] for path in paths if path and path[0] in ("*", key)]
        if any(not rest for rest in rests):
            kept[key] = item
        elif rests and (inner := filter_path(item, rests)) not in (None, {}, []):
            kept[key] = inner
    return kept


CAT_PARAMETERS = {"h", "v", "s", "format", "help", "bytes", "time", "master_timeout", "local"}
ACCEPTED_PARAMETERS = {
    ("GET", "root"): set(),
    ("POST", "password"): {"refresh"},
    ("PUT", "password"): {"refresh"},
    ("GET", "health"): {
        "wait_for_status",
        "timeout",
        "master_timeout",
        "wait_for_events",
        "wait_for_no_initializing_shards",
        "wait_for_no_relocating_shards",
        "wait_for_nodes",
        "wait_for_active_shards",
        "level",
        "local",
        "expand_wildcards",
    },
    ("GET", "cat_nodes"): CAT_PARAMETERS | {"full_id", "include_unloaded_segments"},
    ("GET", "cat_shards"): CAT_PARAMETERS,
    ("GET", "settings"): {"flat_settings", "include_defaults", "master_timeout", "timeout", "local"},
    ("PUT", "settings"): {"flat_settings", "master_timeout", "timeout"},
    ("POST", "flush"): {"force", "wait_if_ongoing", "ignore_unavailable", "allow_no_indices", "expand_wildcards"},
    # RestAddVotingConfigExclusionAction, RestClearVotingConfigExclusionsAction.
    ("GET", "nodes"): {"flat_settings", "timeout", "master_timeout"},
    ("GET", "user"): set(),
    ("POST", "voting"): {"node_names", "node_ids", "timeout", "master_timeout"},
    ("DELETE", "voting"): {"wait_for_removal", "master_timeout"},
}
UNAUTHENTICATED = "missing authentication credentials for REST request [{path}]"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    user: str | None
    body: str


@dataclass
class FakeCluster:
    """What the fake answers. `users`: name → (password, privileges: "superuser" or "monitor")."""

    users: dict[str, tuple[str, str]] = field(default_factory=dict)
    cluster_uuid: str = "fake-cluster-uuid"
    formed: bool = True
    status: str = "green"
    passwords_set: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    shards: dict[str, int] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    voting_exclusions: list[str] = field(default_factory=list)
    initializing: int = 0
    relocating: int = 0
    drain_per_poll: int = 1
    green_after: int | None = None
    absent_for: dict[str, int] = field(default_factory=dict)
    # Nodes restarted from outside (a stand-in kubectl deleting pods): each new name is then missing from
    # the node list for `restart_polls` polls.
    restarted: Callable[[], Sequence[str]] | None = None
    restart_polls: int = 1
    # Unassigned shards while not green (None: one).
    unassigned: int | None = None
    # The next `busy` settings writes answer 503 (a master election); reads of the settings fail while
    # `settings_unreadable`.
    busy: int = 0
    settings_unreadable: bool = False
    # What `_cat/nodes` answers when not 200 (a master election: 503).
    cat_nodes_status: int = 200
    flushes: int = 0
    # Every settings change in order, for tests that check what happened when.
    history: list[tuple[str, str | None]] = field(default_factory=list)
    _seen_restarts: set[str] = field(default_factory=set)
    # What `_nodes` tells of each node (default: the roles master, data, ingest; transport TLS on,
    # verifying certificates), and whether the kibana_system user is enabled.
    name: str = "fake"
    node_roles: dict[str, list[str]] = field(default_factory=dict)
    node_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    kibana_system_enabled: bool = True
    # The version each node runs, for `_cat/nodes?h=name,version` (default 8.0.0: older than any target).
    node_versions: dict[str, str] = field(default_factory=dict)

    def nodes_info(self) -> dict[str, Any]:
        transport = {
            "xpack.security.transport.ssl.enabled": "true",
            "xpack.security.transport.ssl.verification_mode": "certificate",
        }
        return {
            f"id-{name}": {
                "name": name,
                "roles": self.node_roles.get(name, ["data", "ingest", "master"]),
                "settings": self.node_settings.get(name, transport),
            }
            for name in self.present_nodes()
        }

    def present_nodes(self) -> list[str]:
        for name in self.restarted() if self.restarted else ():
            if name not in self._seen_restarts:
                self._seen_restarts.add(name)
                self.absent_for[name] = self.restart_polls
        for name in list(self.absent_for):
            self.absent_for[name] -= 1
            if self.absent_for[name] < 0:
                del self.absent_for[name]
        return [n for n in self.nodes if n not in self.absent_for]

    def shard_lines(self) -> list[str]:
        excluded = set(filter(None, self.settings.get("cluster.routing.allocation.exclude._name", "").split(",")))
        lines = []
        for node, count in self.shards.items():
            if node in excluded and count:
                moved = min(count, self.drain_per_poll)
                self.shards[node] = count - moved
                if moved:
                    lines.append(f"{node} -> 10.0.0.9 xyz other-node")
            lines += [node] * self.shards[node]
        return lines

    def health(self) -> dict[str, Any]:
        if self.green_after is not None and self.settings.get("cluster.routing.allocation.enable") is None:
            self.green_after -= 1
            if self.green_after <= 0:
                self.status, self.initializing, self.relocating = "green", 0, 0
        status = self.status if self.formed else "red"
        return {
            "cluster_name": self.name,
            "status": status,
            "number_of_nodes": len(self.nodes),
            "unassigned_shards": 0 if status == "green" else (1 if self.unassigned is None else self.unassigned),
            "initializing_shards": self.initializing,
            "relocating_shards": self.relocating,
        }


class _Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _user(self) -> tuple[str | None, bool]:
        """The authenticated user, and whether credentials were given at all."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, False
        name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        known = self.cluster.users.get(name)
        return (name if known and known[0] == password else None), True

    def _text(self, lines: list[str]) -> None:
        data = "".join(f"{line}\n" for line in lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        filters = parse_qs(urlsplit(self.path).query).get("filter_path")
        if filters:
            body = filter_path(body, [path.split(".") for text in filters for path in text.split(",")])
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        error = {"root_cause": [{"type": "security_exception", "reason": reason}], "reason": reason}
        self._send(status, {"error": error, "status": status}, headers)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        user, gave_credentials = self._user()
        self.cluster.requests.append(Request(method, url.path, parse_qs(url.query), user, body))
        if user is None:
            reason = "unable to authenticate user" if gave_credentials else UNAUTHENTICATED.format(path=url.path)
            self._error(401, reason, {"WWW-Authenticate": 'Basic realm="security", charset="UTF-8"'})
            return
        privileges = self.cluster.users[user][1]
        parts = [part for part in url.path.split("/") if part]
        unknown = sorted(set(parse_qs(url.query)) - COMMON_PARAMETERS - self._accepted(method, parts))
        if unknown:
            reason = f"request [{url.path}] contains unrecognized parameter: [{unknown[0]}]"
            self._send(400, {"error": {"type": "illegal_argument_exception", "reason": reason}, "status": 400})
            return
        if method == "GET" and not parts:
            uuid = self.cluster.cluster_uuid if self.cluster.formed else "_na_"
            self._send(200, {"name": "fake-node", "cluster_uuid": uuid, "version": {"number": "9.5.2"}})
        elif len(parts) == 4 and parts[:2] == ["_security", "user"] and parts[3] == "_password":
            if privileges != "superuser":
                self._error(
                    403, f"action [cluster:admin/xpack/security/user/change_password] is unauthorized for user [{user}]"
                )
            elif not self.cluster.formed:
                self._error(503, "cluster state not recovered")
            else:
                self.cluster.passwords_set[parts[2]] = json.loads(body)["password"]
                self._send(200, {})
        elif parts == ["_cluster", "health"] and method == "GET":
            self._health(parse_qs(url.query))
        elif parts == ["_cat", "nodes"] and method == "GET" and self.cluster.cat_nodes_status != 200:
            status = self.cluster.cat_nodes_status
            self._send(status, {"error": {"type": "master_not_discovered_exception"}, "status": status})
        elif parts == ["_cat", "nodes"] and method == "GET":
            columns = parse_qs(url.query).get("h", ["name"])[0].split(",")
            self._text(
                [
                    " ".join(name if c == "name" else self.cluster.node_versions.get(name, "8.0.0") for c in columns)
                    for name in self.cluster.present_nodes()
                ]
            )
        elif parts == ["_cat", "shards"] and method == "GET":
            self._text(self.cluster.shard_lines())
        elif parts[:1] == ["_nodes"] and method == "GET":
            self._send(200, {"nodes": self.cluster.nodes_info()})
        elif parts == ["_security", "user", "kibana_system"] and method == "GET":
            self._send(
                200, {"kibana_system": {"username": "kibana_system", "enabled": self.cluster.kibana_system_enabled}}
            )
        elif privileges != "superuser":
            self._error(403, f"action [{method} {url.path}] is unauthorized for user [{user}]")
        elif parts == ["_cluster", "settings"]:
            self._settings(method, body)
        elif parts == ["_flush"] and method == "POST":
            self.cluster.flushes += 1
            self._send(200, {"_shards": {"failed": 0}})
        elif parts == ["_cluster", "voting_config_exclusions"]:
            if method == "POST":
                self.cluster.voting_exclusions += parse_qs(url.query)["node_names"][0].split(",")
            else:
                self.cluster.voting_exclusions.clear()
            self.cluster.history.append(("voting_config_exclusions", ",".join(self.cluster.voting_exclusions)))
            self._send(200, {})
        else:
            self._send(404, {"error": f"the fake does not answer {method} {url.path}"})

    @staticmethod
    def _accepted(method: str, parts: list[str]) -> set[str]:
        route = {
            (): "root",
            ("_cluster", "health"): "health",
            ("_cat", "nodes"): "cat_nodes",
            ("_cat", "shards"): "cat_shards",
            ("_cluster", "settings"): "settings",
            ("_flush",): "flush",
            ("_cluster", "voting_config_exclusions"): "voting",
            ("_nodes",): "nodes",
            ("_nodes", "settings"): "nodes",
        }.get(
            tuple(parts),
            "password" if parts[-1:] == ["_password"] else "user" if parts[:2] == ["_security", "user"] else "",
        )
        return ACCEPTED_PARAMETERS.get((method, route), set())

    def _settings(self, method: str, body: str) -> None:
        if method == "PUT" and self.cluster.busy > 0:
            self.cluster.busy -= 1
            self._send(503, {"error": {"type": "master_not_discovered_exception"}, "status": 503})
        elif method == "GET" and self.cluster.settings_unreadable:
            self._send(500, {"error": {"type": "internal_server_error"}, "status": 500})
        elif method == "PUT":
            for key, value in json.loads(body)["persistent"].items():
                self.cluster.history.append((key, value))
                if value is None:
                    self.cluster.settings.pop(key, None)
                else:
                    self.cluster.settings[key] = value
            self._send(200, {"acknowledged": True, "persistent": json.loads(body)["persistent"], "transient": {}})
        else:
            self._send(200, {"persistent": dict(self.cluster.settings), "transient": {}})

    def _health(self, query: Mapping[str, list[str]]) -> None:
        health = self.cluster.health()
        wanted = query.get("wait_for_status", [None])[0]
        timed_out = wanted is not None and STATUS_ORDER[health["status"]] < STATUS_ORDER[wanted]
        self._send(408 if timed_out else 200, {**health, "timed_out": timed_out})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


@dataclass(frozen=True)
class RunningServer:
    url: str
    port: int
    ca_pem: str
    ca_file: Path
    cluster: FakeCluster


@contextmanager
def fake_elasticsearch(
    cluster: FakeCluster, hosts: Sequence[str], directory: Path, *, authority: trustme.CA | None = None
) -> Iterator[RunningServer]:
    """Serve `cluster` over HTTPS on 127.0.0.1 with a certificate for `hosts` (and localhost), issued by
    `authority` (a new test CA by default)."""
    authority = authority or trustme.CA()
    certificate = authority.issue_cert(*dict.fromkeys([*hosts, "localhost", "127.0.0.1"]))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    handler = type("Handler", (_Handler,), {"cluster": cluster})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    ca_file = directory / "fake-ca.crt"
    ca_pem = authority.cert_pem.bytes().decode()
    ca_file.write_text(ca_pem)
    ca_file.chmod(0o644)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield RunningServer(f"https://localhost:{port}", port, ca_pem, ca_file, cluster)
    finally:
        server.shutdown()
        server.server_close()


class _KibanaHandler(BaseHTTPRequestHandler):
    status: int
    levels: tuple[str, str]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self.path == "/api/status" and self.status != 503:
            # Kibana's status API (core status service): the overall level and each core service's.
            overall, elasticsearch = self.levels
            body = json.dumps(
                {
                    "status": {
                        "overall": {"level": overall},
                        "core": {
                            "elasticsearch": {"level": elasticsearch, "summary": f"Elasticsearch is {elasticsearch}"}
                        },
                    }
                }
            ).encode()
            self.send_response(200 if overall == "available" else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        # Kibana answers 503 "Kibana server is not ready yet" until it can use Elasticsearch, then
        # redirects its root to the login page.
        self.send_response(self.status)
        if self.status == 302:
            self.send_header("Location", "/login?next=%2F")
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def fake_kibana(status: int, levels: tuple[str, str] = ("available", "available")) -> Iterator[str]:
    """Kibana answering `status` at its root (503 until ready), and at /api/status the overall level and
    its Elasticsearch service's (`levels`)."""
    handler = type("Handler", (_KibanaHandler,), {"status": status, "levels": levels})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
