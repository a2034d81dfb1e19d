"""Shell scripts the program runs in containers: the setup step, Kibana's start, the readiness probe.

They hold paths and names, never a secret: secrets reach them as files (or on standard input).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from escluster.plan import KIBANA_USER, SECRETS_DIR
from escluster.security import ADMIN_USER

KIBANA_SECRET_DIR = f"{SECRETS_DIR}/kibana"
# Kibana keystore entries, each filled from the file of the same name under KIBANA_SECRET_DIR.
KIBANA_KEYSTORE_ENTRIES = (
    "elasticsearch.password",
    "xpack.security.encryptionKey",
    "xpack.encryptedSavedObjects.encryptionKey",
    "xpack.reporting.encryptionKey",
)
# The setup step keeps asking for this long on Docker and Swarm (a first start pulls images and forms
# the cluster), then fails the `up` with what to do. Kibana, which needs the password it sets, waits longer.
SETUP_TIMEOUT_SECONDS = 20 * 60
KIBANA_STARTUP_SECONDS = SETUP_TIMEOUT_SECONDS + 10 * 60
SETUP_RETRY_SECONDS = 5
CURL_TIMEOUT_SECONDS = 10
# A line the setup step prints on success, read back as a stack output.
CLUSTER_UUID_PREFIX = "cluster_uuid="
LOCAL_ES_URL = "https://localhost:9200"
LOCAL_KIBANA_URL = "http://localhost:5601"
# What Elasticsearch answers a request without credentials (x-pack security's authentication failure).
ES_UNAUTHENTICATED = "missing authentication credentials"


@dataclass(frozen=True)
class SetupFiles:
    """Where the setup step finds its inputs: the admin's curl credentials, the two request bodies
    carrying the new passwords, and the cluster CA."""

    directory: str

    @property
    def admin_curlrc(self) -> str:
        return f"{self.directory}/admin.curlrc"

    @property
    def elastic_body(self) -> str:
        return f"{self.directory}/elastic.json"

    @property
    def kibana_system_body(self) -> str:
        return f"{self.directory}/kibana_system.json"

    @property
    def ca(self) -> str:
        return f"{self.directory}/ca.crt"


def curl_config_user(user: str, password: str) -> str:
    """A curl `--config` line carrying credentials, so they never show in a process list."""
    escaped = f"{user}:{password}".replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'user = "{escaped}"\n'


def password_body(password: str) -> str:
    """The body of `POST /_security/user/<name>/_password`, on one line."""
    return json.dumps({"password": password})


def setup_stdin(admin_password: str, elastic_password: str, kibana_system_password: str, ca_pem: str) -> str:
    """What `read_setup_stdin` expects: three lines (the admin's curl config, the two bodies), then the CA."""
    return (
        curl_config_user(ADMIN_USER, admin_password)
        + password_body(elastic_password)
        + "\n"
        + password_body(kibana_system_password)
        + "\n"
        + ca_pem
    )


def read_setup_stdin(files: SetupFiles) -> str:
    """Shell that writes standard input (see `setup_stdin`) into the setup files, readable by this user only."""
    return (
        "umask 077\n"
        f"IFS= read -r line && printf '%s\\n' \"$line\" > {shlex.quote(files.admin_curlrc)}\n"
        f"IFS= read -r line && printf '%s' \"$line\" > {shlex.quote(files.elastic_body)}\n"
        f"IFS= read -r line && printf '%s' \"$line\" > {shlex.quote(files.kibana_system_body)}\n"
        f"cat > {shlex.quote(files.ca)}\n"
        "unset line\n"
    )


def setup_script(
    es_urls: Sequence[str], files: SetupFiles, logs_hint: str, timeout_seconds: int = SETUP_TIMEOUT_SECONDS
) -> str:
    """Set the `elastic` and `kibana_system` passwords as the file-realm admin, through any node that
    answers; the same call again changes nothing, so the step is safe on every `up`. Print the
    cluster's UUID. Retry until `timeout_seconds`, then explain the last answer and exit 1."""
    urls = " ".join(shlex.quote(url) for url in es_urls)
    q = shlex.quote
    curl = f"curl --silent --max-time {CURL_TIMEOUT_SECONDS} --cacert {q(files.ca)} --config {q(files.admin_curlrc)}"
    return f"""set -u
deadline=$((SECONDS + {timeout_seconds}))
code=000
where=none
set_password() {{  # $1: node URL, $2: user, $3: body file; prints the HTTP status
  {curl} --output /dev/null --write-out '%{{http_code}}' -X POST -H 'Content-Type: application/json' \\
    --data-binary "@$3" "$1/_security/user/$2/_password"
}}
while [ "$SECONDS" -lt "$deadline" ]; do
  for url in {urls}; do
    where=$url
    code=$(set_password "$url" elastic {q(files.elastic_body)})
    [ "$code" = 200 ] || continue
    code=$(set_password "$url" {KIBANA_USER} {q(files.kibana_system_body)})
    [ "$code" = 200 ] || continue
    uuid=$({curl} "$url/" | sed -n 's/.*"cluster_uuid" *: *"\\([^"]*\\)".*/\\1/p')
    echo "passwords of elastic and {KIBANA_USER} set through $url"
    echo "{CLUSTER_UUID_PREFIX}$uuid"
    exit 0
  done
  echo "waiting for Elasticsearch: last answer HTTP $code from $where"
  sleep {SETUP_RETRY_SECONDS}
done
case "$code" in
  000) why="no node answered over HTTPS (not running, not reachable, or not serving the cluster CA's certificate)" ;;
  401) why="the nodes refused the program's admin user {ADMIN_USER} (its file realm entry is missing on them)" ;;
  503) why="the cluster has no elected master (do a majority of the master-eligible nodes run and reach each other?)" ;;
  *) why="the last answer was HTTP $code" ;;
esac
echo "setup gave up after {timeout_seconds} seconds: could not set the passwords of elastic and \
{KIBANA_USER}: $why (last node asked: $where)." >&2
echo "What to do: read the nodes' logs ({logs_hint}), fix the cause, then run 'pulumi up' again; \
this step runs again until it succeeds." >&2
exit 1
"""


def es_healthcheck(ca_file: str) -> str:
    """Docker's health check of a node: it answers HTTPS with the cluster's certificate and asks for
    credentials. Up, without a password in the container."""
    return f"curl --silent --cacert {shlex.quote(ca_file)} {LOCAL_ES_URL} | grep -q '{ES_UNAUTHENTICATED}'"


def kibana_healthcheck() -> str:
    """Kibana is up: it answers its root (a redirect to the login page, or the page); 503 while it is not ready."""
    return f"""code=$(curl --silent --output /dev/null --write-out '%{{http_code}}' {LOCAL_KIBANA_URL}/) && \
case "$code" in 200|302) true ;; *) false ;; esac"""


def es_readiness_script(ca_file: str, probe_curlrc: str, started_marker: str = "/tmp/.es_started") -> str:
    """The helm chart's readiness pattern: until the node first saw its cluster healthy, wait for
    health (so a rolling restart moves on only once the cluster recovered); afterwards only ask that
    the node answers. The probe user's credentials come from a curl config file, never argv."""
    ca = shlex.quote(ca_file)
    return (
        "set -u\n"
        f"started={shlex.quote(started_marker)}\n"
        'if [ -f "$started" ]; then\n'
        f"  code=$(curl --silent --output /dev/null --write-out '%{{http_code}}' --cacert {ca} {LOCAL_ES_URL}/)\n"
        '  [ "$code" = 401 ] || [ "$code" = 200 ]\n'
        "else\n"
        f"  curl --silent --fail --config {shlex.quote(probe_curlrc)} --cacert {ca} \\\n"
        f"    '{LOCAL_ES_URL}/_cluster/health?wait_for_status=yellow&timeout=1s' > /dev/null &&\n"
        '    touch "$started"\n'
        "fi\n"
    )


def keystore_value(value: str) -> str:
    """A value as `kibana-keystore add --stdin` must receive it: Kibana trims what it reads and parses it
    as JSON when it can (elastic/kibana `src/cli_keystore/add.js`), so `123456` would become a number and
    ` pw ` would lose its spaces. A JSON string parses back to exactly the value."""
    return json.dumps(value)


# The Kibana image's command (elastic/kibana docker_generator Dockerfile: CMD ["/usr/local/bin/kibana-docker"]).
KIBANA_DOCKER = "/usr/local/bin/kibana-docker"


def kibana_start_script() -> str:
    """Fill Kibana's keystore from the secret files, then start Kibana as the image does."""
    entries = " ".join(KIBANA_KEYSTORE_ENTRIES)
    return f"""set -eu
[ -f config/kibana.keystore ] || bin/kibana-keystore create
for entry in {entries}; do
  bin/kibana-keystore add "$entry" --stdin --force < "{KIBANA_SECRET_DIR}/$entry"
done
exec {KIBANA_DOCKER}
"""
