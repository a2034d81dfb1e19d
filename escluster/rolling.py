"""The scripts that change a formed cluster one node at a time, drain nodes before they go, and clean up
after them. Bash and curl, as the Elasticsearch image has them; they never print a secret.

Elastic's rolling restart and upgrade procedure (elastic/docs-content deploy-manage/upgrade and
maintenance): before stopping a node, `cluster.routing.allocation.enable: primaries` and `_flush`; after
it rejoined, reset the setting (null) and wait for green, or, during a version upgrade, for yellow with no
initializing or relocating shards (primaries on upgraded nodes cannot have replicas on older ones).
Removing nodes (elastic/cloud-on-k8s driver downscale, Elastic's "add and remove nodes"): exclude a data
node from allocation (`cluster.routing.allocation.exclude._name`) and wait until it holds no shard; put a
master-eligible node in the voting configuration exclusions; clear both once the nodes have left.

Each script runs after a preamble that defines `es METHOD PATH [BODY]`, which sets ES_CODE and ES_BODY
(ES_CODE 000 when no node answers): in a throwaway container on the cluster's network for Docker and
Swarm (`container_preamble`), or through `kubectl exec` into a ready pod for Kubernetes (`kubectl_preamble`).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from escluster.security import ADMIN_USER

POLL_SECONDS = 5
GATE_TIMEOUT_SECONDS = 30 * 60
DRAIN_TIMEOUT_SECONDS = 60 * 60
CLEANUP_TIMEOUT_SECONDS = 5 * 60
CURL_TIMEOUT_SECONDS = 30
ALLOCATION_ENABLE = "cluster.routing.allocation.enable"
ALLOCATION_EXCLUDE = "cluster.routing.allocation.exclude._name"


@dataclass(frozen=True)
class Drained:
    name: str
    master_eligible: bool


def _q(text: str) -> str:
    return shlex.quote(text)


def container_preamble(es_urls: Sequence[str], directory: str) -> str:
    """In a container: the admin's curl config line and the CA come on standard input (into `directory`, a
    tmpfs); `es` asks each node in turn until one answers."""
    urls = " ".join(_q(url) for url in es_urls)
    d = _q(directory)
    return f"""set -u
umask 077
IFS= read -r line && printf '%s\\n' "$line" > {d}/admin.curlrc
cat > {d}/ca.crt
unset line
es() {{  # METHOD PATH [BODY]
  ES_CODE=000
  ES_BODY=
  local url out
  for url in {urls}; do
    out=$(curl --silent --max-time {CURL_TIMEOUT_SECONDS} --cacert {d}/ca.crt --config {d}/admin.curlrc -X "$1" \\
      -H 'Content-Type: application/json' ${{3:+--data-binary "$3"}} --write-out '\\n%{{http_code}}' "$url$2") || true
    ES_CODE=${{out##*$'\\n'}}
    ES_BODY=${{out%$'\\n'*}}
    [ "$ES_CODE" != 000 ] && return 0
  done
  return 0
}}
"""


# What runs inside an Elasticsearch pod for one request: the admin's line on stdin, the pod's own CA.
_POD_REQUEST = (
    'IFS= read -r a; curl --silent --max-time {timeout} --cacert {ca} --config <(printf "%s\\n" "$a") '
    '-X "$1" -H "Content-Type: application/json" ${{3:+--data-binary "$3"}} '
    '--write-out "\\n%{{http_code}}" "https://localhost:9200$2"'
)


def kubectl_preamble(kubectl: str, selector: str, ca_file: str) -> str:
    """Locally, with kubectl: the admin's curl config line comes on standard input; `es` runs each request
    in a ready Elasticsearch pod (not AVOID_POD, the one being restarted)."""
    request = _POD_REQUEST.format(timeout=CURL_TIMEOUT_SECONDS, ca=ca_file)
    return f"""set -u
IFS= read -r ADMIN_LINE
AVOID_POD=
K={_q(kubectl)}
ready_pods() {{
  $K get pods -l {_q(selector)} \\
    -o jsonpath='{{range .items[?(@.status.containerStatuses[0].ready==true)]}}{{.metadata.name}}{{" "}}{{end}}'
}}
pods() {{
  $K get pods -l {_q(selector)} -o jsonpath='{{range .items[*]}}{{.metadata.name}}{{" "}}{{end}}'
}}
es() {{  # METHOD PATH [BODY]
  ES_CODE=000
  ES_BODY=
  local pod out
  for pod in $(ready_pods); do
    [ "$pod" = "$AVOID_POD" ] && continue
    out=$(printf '%s\\n' "$ADMIN_LINE" |
      $K exec -i "$pod" -c elasticsearch -- bash -c {_q(request)} es "$1" "$2" "${{3-}}") || continue
    ES_CODE=${{out##*$'\\n'}}
    ES_BODY=${{out%$'\\n'*}}
    [ "$ES_CODE" != 000 ] && return 0
  done
  return 0
}}
"""


# Helpers over `es`: JSON fields of a flat answer, waiting with a deadline, the cluster's health.
_HELPERS = r"""field() {  # the value of a flat JSON field of ES_BODY
  printf '%s' "$ES_BODY" | grep -o "\"$1\" *: *[^,}]*" | head -n 1 | sed 's/^[^:]*: *//; s/"//g'
}
fail() {
  echo "$*" >&2
  exit 1
}
health_line() {  # one line on the cluster's health, for messages
  es GET /_cluster/health
  if [ "$ES_CODE" = 000 ]; then echo "no node answered"; return; fi
  echo "the cluster is $(field status) ($(field number_of_nodes) nodes; unassigned shards $(field unassigned_shards),\
 initializing $(field initializing_shards), relocating $(field relocating_shards))"
}
health_reached() {  # TARGET UPGRADE: green; or yellow with no shard moving when the target or an upgrade allows it
  es GET /_cluster/health
  [ "$ES_CODE" = 200 ] || return 1
  case "$(field status)" in
    green) return 0 ;;
    yellow)
      [ "$1" = yellow ] || [ "$2" = 1 ] || return 1
      [ "$(field initializing_shards)" = 0 ] && [ "$(field relocating_shards)" = 0 ] ;;
    *) return 1 ;;
  esac
}
node_present() {
  es GET '/_cat/nodes?h=name'
  [ "$ES_CODE" = 200 ] && printf '%s\n' "$ES_BODY" | grep -qx "$1"
}
shards_on() {  # shards a node holds or is moving (a relocating one reads "from -> ip id to")
  es GET '/_cat/shards?h=node'
  [ "$ES_CODE" = 200 ] || { echo unknown; return; }
  printf '%s\n' "$ES_BODY" | awk -v n="$1" '$1 == n || $NF == n { c++ } END { print c + 0 }'
}
set_allocation() {  # "primaries" (quoted JSON) or null
  es PUT /_cluster/settings "{\"persistent\":{\"ALLOCATION_ENABLE\":$1}}"
  [ "$ES_CODE" = 200 ] || fail "could not set ALLOCATION_ENABLE to $1: HTTP $ES_CODE $ES_BODY"
}
excluded() {
  es GET '/_cluster/settings?flat_settings=true'
  [ "$ES_CODE" = 200 ] || fail "could not read the cluster settings: HTTP $ES_CODE"
  printf '%s' "$ES_BODY" | grep -o '"ALLOCATION_EXCLUDE" *: *"[^"]*"' | head -n 1 | sed 's/^[^:]*: *"//; s/"$//'
}
set_excluded() {  # the comma-separated node names, or nothing for none
  local value=null
  [ -n "$1" ] && value="\"$1\""
  es PUT /_cluster/settings "{\"persistent\":{\"ALLOCATION_EXCLUDE\":$value}}"
  [ "$ES_CODE" = 200 ] || fail "could not set ALLOCATION_EXCLUDE: HTTP $ES_CODE $ES_BODY"
}
""".replace("ALLOCATION_ENABLE", ALLOCATION_ENABLE).replace("ALLOCATION_EXCLUDE", ALLOCATION_EXCLUDE)


# The steps of a roll, as functions every runner shares (`POLL` is the seconds between two looks).
_STEPS = r"""baseline() {  # prints the status every gate waits for; refuses a red or silent cluster
  es GET /_cluster/health
  [ "$ES_CODE" = 200 ] || fail "before changing any node: no node answered (HTTP $ES_CODE); not touching the cluster"
  local status
  status=$(field status)
  [ "$status" = red ] && fail "before changing any node: $(health_line); not touching a red cluster"
  echo "$status"
}
prepare_node() {  # NODE: keep replicas where they are while it restarts, and flush
  set_allocation '"primaries"'
  es POST /_flush
  echo "$1: replicas stay put while it restarts"
}
gate_node() {  # NODE TARGET UPGRADE TIMEOUT: it rejoined, allocation is back, the cluster reached TARGET
  local deadline=$((SECONDS + $4))
  until node_present "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$1 did not rejoin the cluster within $(($4 / 60)) minutes; \
$(health_line). No further node was changed; fix $1, then run 'pulumi up' again to go on."
    sleep POLL
  done
  set_allocation null
  until health_reached "$2" "$3"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "after $1 restarted, the cluster did not get back to $2 within \
$(($4 / 60)) minutes: $(health_line). No further node was changed; run 'pulumi up' again to go on."
    sleep POLL
  done
  echo "$1 is back and the cluster is $(field status)"
}
drain_node() {  # NODE MASTER TIMEOUT: exclude it from allocation until it holds no shard; then, if master-eligible,
  local current left deadline=$((SECONDS + $3))  # out of the voting configuration
  current=$(excluded)
  case ",$current," in *,"$1",*) ;; *) set_excluded "${current:+$current,}$1" ;; esac
  while left=$(shards_on "$1") && [ "$left" != 0 ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$1 still holds $left shards after $(($3 / 60)) minutes \
($(health_line)); it stays excluded and is not removed. Give the other nodes room, then run 'pulumi up' again."
    sleep POLL
  done
  echo "$1 holds no shard"
  if [ "$2" = 1 ]; then
    es POST "/_cluster/voting_config_exclusions?node_names=$1&timeout=2m"
    [ "$ES_CODE" = 200 ] || fail "could not take $1 out of the voting configuration: HTTP $ES_CODE $ES_BODY"
    echo "$1 left the voting configuration"
  fi
}
""".replace("POLL", str(POLL_SECONDS))
LIBRARY = _HELPERS + _STEPS


def baseline_script() -> str:
    """Before a change: the cluster must answer and not be red; prints its status (the gates' target)."""
    return "baseline\n"


def prepare_script(node: str) -> str:
    """Right before a node restarts: keep replicas where they are, and flush."""
    return f"prepare_node {_q(node)}\n"


def gate_script(node: str, target: str, upgrade: bool, timeout_seconds: int = GATE_TIMEOUT_SECONDS) -> str:
    """After a node restarted: it rejoined, allocation is back on, and the cluster reached `target` (or, when
    upgrading, yellow without moving shards). Otherwise fail, naming the node and the cluster's state: the
    nodes after it depend on this step, so none of them is touched."""
    return f"gate_node {_q(node)} {_q(target)} {1 if upgrade else 0} {timeout_seconds}\n"


def drain_script(nodes: Sequence[Drained], timeout_seconds: int = DRAIN_TIMEOUT_SECONDS) -> str:
    """Before nodes are removed, one at a time: exclude each from allocation and wait until it holds no
    shard; take a master-eligible one out of the voting configuration."""
    return "".join(f"drain_node {_q(n.name)} {1 if n.master_eligible else 0} {timeout_seconds}\n" for n in nodes)


def cleanup_script(nodes: Sequence[str], timeout_seconds: int = CLEANUP_TIMEOUT_SECONDS) -> str:
    """After removed nodes are gone: take them off the allocation exclusions, clear the voting exclusions."""
    names = " ".join(_q(n) for n in nodes)
    return f"""deadline=$((SECONDS + {timeout_seconds}))
for node in {names}; do
  while node_present "$node"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$node was removed but is still in the cluster; its exclusions stay"
    sleep {POLL_SECONDS}
  done
done
kept=
for name in $(excluded | tr ',' ' '); do
  case " {" ".join(nodes)} " in *" $name "*) ;; *) kept="${{kept:+$kept,}}$name" ;; esac
done
set_excluded "$kept"
es DELETE '/_cluster/voting_config_exclusions?wait_for_removal=true&timeout=2m'
[ "$ES_CODE" = 200 ] || fail "could not clear the voting configuration exclusions: HTTP $ES_CODE $ES_BODY"
echo "exclusions of {", ".join(nodes)} cleared"
"""


def admin_stdin(admin_line: str, ca_pem: str) -> str:
    """Standard input of a container-run script: the admin's curl config line, then the CA."""
    assert admin_line.startswith('user = "' + ADMIN_USER + ":")
    return admin_line + ca_pem


def kubernetes_roll_script(
    statefulsets: Sequence[str], upgrade: bool, timeout_seconds: int = GATE_TIMEOUT_SECONDS
) -> str:
    """With `updateStrategy: OnDelete`, a changed pod template waits for us: restart the pods whose revision
    is not the StatefulSet's `updateRevision`, one at a time across every StatefulSet (given in Elastic's
    order, highest ordinal first within one, as the StatefulSet controller would), each after the
    cluster reached the target, with allocation held, and gated like any node (ECK's rolling upgrade)."""
    sets = " ".join(_q(s) for s in statefulsets)
    upgrading = 1 if upgrade else 0
    revision = "{.metadata.labels.controller-revision-hash}"
    return f"""target=$(baseline) || exit 1
for sts in {sets}; do
  update=$($K get statefulset "$sts" -o jsonpath='{{.status.updateRevision}}')
  replicas=$($K get statefulset "$sts" -o jsonpath='{{.spec.replicas}}')
  for ((i = replicas - 1; i >= 0; i--)); do
    pod="$sts-$i"
    [ "$($K get pod "$pod" -o jsonpath='{revision}')" = "$update" ] && continue
    health_reached "$target" {upgrading} || fail "before restarting $pod: $(health_line); no further pod was restarted"
    AVOID_POD=$pod
    prepare_node "$pod"
    $K delete pod "$pod" --wait=true > /dev/null || fail "could not delete $pod"
    deadline=$((SECONDS + {timeout_seconds}))
    until [ "$($K get pod "$pod" -o jsonpath='{revision}' 2>/dev/null)" = "$update" ] &&
      [ "$($K get pod "$pod" -o jsonpath='{{.status.containerStatuses[0].ready}}' 2>/dev/null)" = true ]; do
      [ "$SECONDS" -lt "$deadline" ] || fail "$pod did not come back ready within {timeout_seconds // 60} minutes; \\
see $K describe pod $pod. No further pod was restarted; run 'pulumi up' again to go on."
      sleep {POLL_SECONDS}
    done
    AVOID_POD=
    gate_node "$pod" "$target" {upgrading} {timeout_seconds}
  done
done
echo "every pod runs its StatefulSet's current template"
"""


# What a node presents, asked with only the new CA trusted: a handshake succeeds (any HTTP status) only
# when its certificate chains to that CA; "000" is a failed handshake or no answer.
def _presents_new_ca(generation: int, where: str, then: str) -> str:
    return f"""case "$code" in
    [1-5][0-9][0-9]) ;;
    *) fail "{where} does not present a certificate from CA generation {generation} (or does not answer): the \\
old CA stays in the trust bundles. {then}" ;;
  esac"""


def issuer_check_script(urls: Sequence[str], ca_pem: str, generation: int, directory: str) -> str:
    """Step 3 of a CA rotation (escluster.changes.CaPlan), in a task container, before the old CA leaves the
    trust bundles: every node presents a certificate from the new CA (`ca_pem`)."""
    ca_file = _q(f"{directory}/issuing.crt")
    check = _presents_new_ca(generation, "$url", "Run 'pulumi up' again once every node runs its new certificate.")
    return f"""set -u
fail() {{
  echo "$*" >&2
  exit 1
}}
printf '%s' {_q(ca_pem)} > {ca_file}
for url in {" ".join(_q(u) for u in urls)}; do
  code=$(curl --silent --max-time {CURL_TIMEOUT_SECONDS} --output /dev/null --write-out '%{{http_code}}' \\
    --cacert {ca_file} "$url/")
  {check}
done
echo "every node presents a certificate from CA generation {generation}"
"""


# In an Elasticsearch pod: the status of a request to itself trusting only the CA given as $1.
_POD_HANDSHAKE = (
    f'curl --silent --max-time {CURL_TIMEOUT_SECONDS} --output /dev/null --write-out "%{{http_code}}" '
    '--cacert <(printf "%s" "$1") https://localhost:9200/'
)


# The loop over the cluster's pods; no pod listed is a failure, not a pass.
_EVERY_POD = """listed=$(pods) && [ -n "$listed" ] || fail "could not list the Elasticsearch pods; nothing was changed"
for pod in $listed; do"""


def kubernetes_issuer_check_script(ca_pem: str, generation: int) -> str:
    """Step 3 on Kubernetes, after the kubectl preamble: every Elasticsearch pod presents a
    certificate from the new CA (the kubelet updates a mounted Secret some time after it changed, and the
    node reloads the files a few seconds later). A pod that does not answer keeps the old CA in place."""
    check = _presents_new_ca(generation, "$pod", "Run 'pulumi up' again in a minute.")
    return f"""{_EVERY_POD}
  code=$($K exec "$pod" -c elasticsearch -- bash -c {_q(_POD_HANDSHAKE)} check {_q(ca_pem)} 2>/dev/null)
  {check}
done
echo "every pod presents a certificate from CA generation {generation}"
"""


def kubernetes_trust_check_script(ca_pem: str, generation: int, ca_file: str) -> str:
    """Step 2 on Kubernetes, before certificates from the new CA reach the pods: every pod's mounted
    trust bundle (`ca_file`) holds the new CA (step 1 put it in the Secret; the kubelet copies it later)."""
    body = "".join(line for line in ca_pem.splitlines() if line and not line.startswith("-----"))
    return f"""{_EVERY_POD}
  bundle=$($K exec "$pod" -c elasticsearch -- cat {_q(ca_file)} 2>/dev/null) ||
    fail "could not read the trust bundle of $pod: no certificate from CA generation {generation} is issued \\
until every pod trusts it. Run 'pulumi up' again once it runs."
  case "$(printf '%s' "$bundle" | tr -d ' \\r\\n')" in
    *{_q(body)}*) ;;
    *) fail "$pod does not trust CA generation {generation} yet (the kubelet has not updated its files): no \\
certificate from it is issued. Run 'pulumi up' again in a minute." ;;
  esac
done
echo "every pod trusts CA generation {generation}"
"""
