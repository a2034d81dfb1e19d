"""Docker engine URLs, read the way both of their users read them: the pulumi-docker provider and the
`docker` CLI (or `ssh`) that the program runs for swarm labels and one-shot jobs.

docker/cli `cli/connhelper/ssh/ssh.go` (newSpec) refuses a password, a query or a fragment in an ssh://
URL, and turns a path into the remote socket; `opts/hosts.go` gives a tcp:// URL without a port
port 2375 even when TLS is on. We accept only what means the same to every reader.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Engine:
    """A Docker engine: `ssh://user@host[:port]`, `tcp://host:port` or `unix:///path`."""

    url: str
    scheme: str
    host: str = ""
    user: str = ""
    port: int | None = None
    socket: str = ""

    @property
    def address(self) -> str:
        """The machine's name or address, without user or port (empty for a local socket)."""
        return self.host


# The engine the `docker` CLI and the provider find by themselves (DOCKER_HOST, or the local socket).
LOCAL_ENGINE = Engine("", "local")


def parse_engine(text: str) -> Engine:
    """The engine a URL names, or ValueError saying what no Docker client would accept."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("ssh", "tcp", "unix"):
        raise ValueError(f"{text!r} is not a Docker engine URL (ssh://user@host, tcp://host:2376 or unix:///path)")
    if scheme == "unix":
        if not rest.startswith("/") or any(c.isspace() for c in rest):
            raise ValueError(
                f"{text!r}: a unix:// engine names an absolute socket path, such as unix:///var/run/docker.sock"
            )
        return Engine(text, scheme, socket=rest)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"{text!r}: {error}") from None
    host = parts.hostname or ""
    if parts.password is not None:
        raise ValueError(f"{text!r}: a password in the URL is refused by the docker CLI; use an ssh key")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ValueError(f"{text!r}: write only [user@]host[:port], without a path, query or fragment")
    if not _HOST.match(host):
        raise ValueError(f"{text!r}: {host!r} is not a host name or IPv4 address")
    if scheme == "tcp":
        if parts.username is not None:
            raise ValueError(f"{text!r}: a tcp:// engine takes no user")
        if port is None:
            raise ValueError(f"{text!r}: give the port (the docker CLI would use 2375, the plain-text port)")
        return Engine(text, scheme, host=host, port=port)
    user = parts.username or ""
    if user and not _USER.match(user):
        raise ValueError(f"{text!r}: {user!r} is not a user name")
    return Engine(text, scheme, host=host, user=user, port=port)


def _engine_url(value: str) -> str:
    parse_engine(value)
    return value


EngineUrl = Annotated[str, AfterValidator(_engine_url)]


def engine_command(engine: Engine, argv: list[str], ssh_opts: tuple[str, ...] = ()) -> str:
    """A shell command that runs `docker <argv>` against the engine from the machine running `pulumi up`.

    Over ssh, the command runs on the engine's host with its own `docker` (the CLI cannot take the
    stack's ssh options); otherwise the local CLI talks to the engine (`engine_environment`)."""
    docker = shlex.join(["docker", *argv])
    if engine.scheme != "ssh":
        return docker
    ssh = ["ssh", *ssh_opts]
    if engine.user:
        ssh += ["-l", engine.user]
    if engine.port is not None:
        ssh += ["-p", str(engine.port)]
    # ssh hands the remote command to the login shell, which parses it once more.
    return shlex.join([*ssh, "-o", "BatchMode=yes", "-T", "--", engine.host, docker])


def engine_environment(engine: Engine, cert_path: str | None) -> dict[str, str]:
    """What the local docker CLI needs for a tcp:// or unix:// engine (nothing for ssh: the remote CLI runs)."""
    if engine.scheme in ("ssh", "local"):
        return {}
    environment = {"DOCKER_HOST": engine.url}
    if engine.scheme == "tcp" and cert_path:
        environment |= {"DOCKER_CERT_PATH": cert_path, "DOCKER_TLS_VERIFY": "1"}
    return environment
