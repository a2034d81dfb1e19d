"""Shell scripts the one-shot setup container and Kibana run. They hold paths, never secrets."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from escluster.plan import KIBANA_USER, SECRETS_DIR

SETUP_CURL_CONFIG = f"{SECRETS_DIR}/elastic.curlrc"
SETUP_PASSWORD_BODY = f"{SECRETS_DIR}/kibana_system_password.json"
KIBANA_SECRET_DIR = f"{SECRETS_DIR}/kibana"
# Kibana keystore entries, each filled from the file of the same name under KIBANA_SECRET_DIR.
KIBANA_KEYSTORE_ENTRIES = (
    "elasticsearch.password",
    "xpack.security.encryptionKey",
    "xpack.encryptedSavedObjects.encryptionKey",
    "xpack.reporting.encryptionKey",
)
SETUP_ATTEMPTS = 120
SETUP_RETRY_SECONDS = 5


def curl_config_user(user: str, password: str) -> str:
    """A curl `--config` line carrying credentials, so they never show in a process list."""
    escaped = f"{user}:{password}".replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'user = "{escaped}"\n'


def setup_script(es_urls: Sequence[str], ca_file: str) -> str:
    """Wait for any node to answer, then set the kibana_system password (the same call again is harmless)."""
    urls = " ".join(shlex.quote(url) for url in es_urls)
    return f"""set -u
code=none
for attempt in $(seq 1 {SETUP_ATTEMPTS}); do
  for url in {urls}; do
    code=$(curl --silent --output /dev/null --write-out '%{{http_code}}' \\
      --cacert {shlex.quote(ca_file)} --config {SETUP_CURL_CONFIG} \\
      -X POST -H 'Content-Type: application/json' --data @{SETUP_PASSWORD_BODY} \\
      "$url/_security/user/{KIBANA_USER}/_password")
    if [ "$code" = 200 ]; then
      echo "{KIBANA_USER} password set through $url"
      exit 0
    fi
  done
  echo "waiting for Elasticsearch (attempt $attempt, last HTTP status $code)"
  sleep {SETUP_RETRY_SECONDS}
done
echo "gave up: no node accepted the {KIBANA_USER} password (last HTTP status $code)" >&2
exit 1
"""


def es_readiness_script(ca_file: str, started_marker: str = "/tmp/.es_started") -> str:
    """The helm chart's readiness pattern: until the node first saw its cluster healthy, wait for
    health (so a rolling restart moves on only once the cluster recovered); afterwards only ask that
    the node answers. The password reaches curl on stdin (escaped for its config), not in argv."""
    ca = shlex.quote(ca_file)
    return (
        "set -u\n"
        f"started={shlex.quote(started_marker)}\n"
        'if [ -f "$started" ]; then\n'
        f"  code=$(curl --silent --output /dev/null --write-out '%{{http_code}}' --cacert {ca} https://localhost:9200/)\n"
        '  [ "$code" = 401 ] || [ "$code" = 200 ]\n'
        "else\n"
        """  password=$(printf '%s' "$ELASTIC_PASSWORD" | sed 's/[\\\\"]/\\\\&/g')\n"""
        """  printf 'user = "elastic:%s"\\n' "$password" |\n"""
        f"    curl --silent --fail --config - --cacert {ca} \\\n"
        "    'https://localhost:9200/_cluster/health?wait_for_status=yellow&timeout=1s' > /dev/null &&\n"
        '    touch "$started"\n'
        "fi\n"
    )


def kibana_start_script() -> str:
    """Fill Kibana's keystore from the secret files, then start Kibana as the image does."""
    entries = " ".join(KIBANA_KEYSTORE_ENTRIES)
    return f"""set -eu
[ -f config/kibana.keystore ] || bin/kibana-keystore create
for entry in {entries}; do
  bin/kibana-keystore add "$entry" --stdin --force < "{KIBANA_SECRET_DIR}/$entry"
done
exec /usr/local/bin/kibana-docker
"""
