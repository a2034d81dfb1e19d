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
from typing import Protocol

from escluster.security import ADMIN_USER

POLL_SECONDS = 5
GATE_TIMEOUT_SECONDS = 30 * 60
DRAIN_TIMEOUT_SECONDS = 60 * 60
CLEANUP_TIMEOUT_SECONDS = 5 * 60
CURL_TIMEOUT_SECONDS = 30
ALLOCATION_ENABLE = "cluster.routing.allocation.enable"
ALLOCATION_EXCLUDE = "cluster.routing.allocation.exclude._name"


class LeavingNode(Protocol):
    """A node that is drained and removed (escluster.changes.RemovedNode)."""

    @property
    def name(self) -> str: ...
    @property
    def master_eligible(self) -> bool: ...


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


# Helpers over `es`: JSON fields of a flat answer, retries, the cluster's health and settings.
_HELPERS = (
    r"""field() {  # the value of a flat JSON field of ES_BODY
  printf '%s' "$ES_BODY" | grep -o "\"$1\" *: *[^,}]*" | head -n 1 | sed 's/^[^:]*: *//; s/"//g'
}
fail() {
  echo "$*" >&2
  exit 1
}
es_retry() {  # es, asked again while no node answers or the master is busy (an election, a full queue)
  local try
  for try in 1 2 3 4 5 6 7 8 9 10 11 12; do
    es "$@"
    case "$ES_CODE" in 000|429|502|503|504) sleep POLL ;; *) return 0 ;; esac
  done
}
health_line() {  # one line on the cluster's health, for messages
  es GET /_cluster/health
  if [ "$ES_CODE" = 000 ]; then echo "no node answered"; return; fi
  echo "the cluster is $(field status) ($(field number_of_nodes) nodes; unassigned shards $(field unassigned_shards),\
 initializing $(field initializing_shards), relocating $(field relocating_shards))"
}
health_reached() {  # STATUS UNASSIGNED UPGRADE: no worse than the health before the change
  case "$1" in red|none) return 0 ;; esac  # nothing left to keep; a node's return is what counts
  es GET '/_cluster/health?wait_for_events=languid&timeout=10s'
  [ "$ES_CODE" = 200 ] || return 1
  local status moving
  status=$(field status)
  moving=$(($(field initializing_shards) + $(field relocating_shards)))
  case "$status" in
    green) return 0 ;;
    yellow)
      [ "$moving" = 0 ] || return 1
      # During an upgrade, replicas of primaries on upgraded nodes wait for more upgraded nodes.
      [ "$3" = 1 ] && return 0
      [ "$1" = yellow ] && [ "$(field unassigned_shards)" -le "$2" ] ;;
    *) return 1 ;;
  esac
}
wait_health() {  # STATUS UNASSIGNED UPGRADE DEADLINE WHAT
  until health_reached "$1" "$2" "$3"; do
    [ "$SECONDS" -lt "$4" ] || fail "$5, the cluster did not get back to its health before the change ($1, \
$2 unassigned shards): $(health_line). No further node was changed; run 'pulumi up' again to go on."
    sleep POLL
  done
}
node_names() {
  es_retry GET '/_cat/nodes?h=name'
  [ "$ES_CODE" = 200 ] && printf '%s\n' "$ES_BODY"
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
  es_retry PUT /_cluster/settings "{\"persistent\":{\"ALLOCATION_ENABLE\":$1}}"
  [ "$ES_CODE" = 200 ] || fail "could not set ALLOCATION_ENABLE to $1: HTTP $ES_CODE $ES_BODY"
}
excluded() {
  es_retry GET '/_cluster/settings?flat_settings=true'
  [ "$ES_CODE" = 200 ] || fail "could not read the cluster settings: HTTP $ES_CODE"
  printf '%s' "$ES_BODY" | grep -o '"ALLOCATION_EXCLUDE" *: *"[^"]*"' | head -n 1 | sed 's/^[^:]*: *"//; s/"$//'
}
set_excluded() {  # the comma-separated node names, or nothing for none
  local value=null
  [ -n "$1" ] && value="\"$1\""
  es_retry PUT /_cluster/settings "{\"persistent\":{\"ALLOCATION_EXCLUDE\":$value}}"
  [ "$ES_CODE" = 200 ] || fail "could not set ALLOCATION_EXCLUDE: HTTP $ES_CODE $ES_BODY"
}
""".replace("ALLOCATION_ENABLE", ALLOCATION_ENABLE)
    .replace("ALLOCATION_EXCLUDE", ALLOCATION_EXCLUDE)
    .replace("POLL", str(POLL_SECONDS))
)


# The steps of a roll, as functions every runner shares (`POLL` is the seconds between two looks). As
# ECK's rolling upgrade does, a node that is not in the cluster changes whatever the cluster's health (it
# serves nothing): that is how a broken change is undone on a red cluster, or on a single node that is
# down. A node that is in the cluster restarts only while the cluster is green or yellow.
_STEPS = r"""baseline() {  # prints the health every gate returns to: STATUS UNASSIGNED ("none -": no answer)
  es_retry GET /_cluster/health
  if [ "$ES_CODE" != 200 ]; then
    echo "no node answered (HTTP $ES_CODE): only nodes that are not in the cluster change" >&2
    echo "none -"
    return 0
  fi
  local status
  status=$(field status)
  [ "$status" = red ] && echo "$(health_line): only nodes that are not in the cluster change" >&2
  echo "$status $(field unassigned_shards)"
}
prepare_node() {  # NODE: keep replicas where they are while it restarts, and flush
  if ! node_present "$1"; then
    echo "$1 is not in the cluster: it changes without holding replicas (prepared at $(date +%s%N))"
    return 0
  fi
  es_retry GET /_cluster/health
  case "$(field status)" in
    green | yellow) ;;
    *) fail "not restarting $1: $(health_line). While the cluster is red only nodes that are not in it \
change; bring those back first (fix their settings), then run 'pulumi up' again." ;;
  esac
  set_allocation '"primaries"'
  es POST /_flush
  echo "$1: replicas stay put while it restarts (prepared at $(date +%s%N))"
}
gate_node() {  # NODE STATUS UNASSIGNED UPGRADE TIMEOUT: it rejoined, allocation is back, the health is back
  local deadline=$((SECONDS + $5))
  until node_present "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$1 did not rejoin the cluster within $(($5 / 60)) minutes; \
$(health_line). No further node was changed; fix $1, then run 'pulumi up' again to go on."
    sleep POLL
  done
  set_allocation null
  wait_health "$2" "$3" "$4" "$deadline" "after $1 restarted"
  echo "$1 is back: $(health_line)"
}
drain_node() {  # NODE MASTER TIMEOUT: exclude it from allocation until it holds no shard; then, if master-eligible,
  local current left deadline=$((SECONDS + $3))  # out of the voting configuration
  current=$(excluded) || exit 1
  case ",$current," in *,"$1",*) ;; *) set_excluded "${current:+$current,}$1" ;; esac
  while left=$(shards_on "$1") && [ "$left" != 0 ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$1 still holds $left shards after $(($3 / 60)) minutes \
($(health_line)); it stays excluded and is not removed. Give the other nodes room, then run 'pulumi up' again."
    sleep POLL
  done
  echo "$1 holds no shard"
  if [ "$2" = 1 ]; then
    es_retry POST "/_cluster/voting_config_exclusions?node_names=$1&timeout=25s"
    [ "$ES_CODE" = 200 ] || fail "could not take $1 out of the voting configuration: HTTP $ES_CODE $ES_BODY"
    echo "$1 left the voting configuration"
  fi
}
""".replace("POLL", str(POLL_SECONDS))
LIBRARY = _HELPERS + _STEPS


def baseline_script() -> str:
    """Before a change: prints the cluster's health, which every gate waits to get back to."""
    return "baseline\n"


def prepare_script(node: str) -> str:
    """Right before a node restarts: keep replicas where they are, and flush. Prints a line that differs
    on every run, so the node's gate (which takes it as an input) runs whenever its prepare did."""
    return f"prepare_node {_q(node)}\n"


def gate_script(node: str, baseline: str, upgrade: bool, timeout_seconds: int = GATE_TIMEOUT_SECONDS) -> str:
    """After a node restarted: it rejoined, allocation is back on, and the cluster's health is back to
    `baseline` (the baseline's line: status and unassigned shards), or, when upgrading, yellow without
    moving shards. Otherwise fail, naming the node and the cluster's state: the nodes after it depend on
    this step, so none of them is touched."""
    status, _, unassigned = baseline.partition(" ")
    return f"gate_node {_q(node)} {_q(status)} {_q(unassigned or '-')} {1 if upgrade else 0} {timeout_seconds}\n"


def drain_script(nodes: Sequence[LeavingNode], timeout_seconds: int = DRAIN_TIMEOUT_SECONDS) -> str:
    """Before nodes are removed, one at a time: exclude each from allocation and wait until it holds no
    shard; take a master-eligible one out of the voting configuration."""
    return "".join(f"drain_node {_q(n.name)} {1 if n.master_eligible else 0} {timeout_seconds}\n" for n in nodes)


def cleanup_script(gone: Sequence[LeavingNode], returning: Sequence[str]) -> str:
    """On the run after a drain: the allocation exclusions of the drained nodes that have left, and of
    those that come back (`returning`: their names are planned again), are cleared; the voting exclusions
    too, once every drained master has left. A drained node still in the cluster (Pulumi could not delete
    it) keeps its exclusions: it is reported, not waited for. Other exclusions stay as they are."""
    gone_names = " ".join(_q(n.name) for n in gone)
    masters = " ".join(_q(n.name) for n in gone if n.master_eligible)
    back = " ".join(_q(n) for n in returning)
    return f"""present=$(node_names) || fail "could not list the cluster's nodes: HTTP $ES_CODE"
current=$(excluded) || exit 1
kept=
for name in $(printf '%s' "$current" | tr ',' ' '); do
  case " {back} " in *" $name "*) continue ;; esac
  case " {gone_names} " in
    *" $name "*)
      printf '%s\\n' "$present" | grep -qx "$name" || continue
      echo "$name was removed but is still in the cluster: its allocation exclusion stays" ;;
  esac
  kept="${{kept:+$kept,}}$name"
done
[ "$kept" = "$current" ] || set_excluded "$kept"
masters_left=yes
for name in {masters}; do
  printf '%s\\n' "$present" | grep -qx "$name" && masters_left=no
done
if [ -n "{masters}" ] && [ "$masters_left" = yes ]; then
  es_retry DELETE '/_cluster/voting_config_exclusions?wait_for_removal=true'
  [ "$ES_CODE" = 200 ] || fail "could not clear the voting configuration exclusions: HTTP $ES_CODE $ES_BODY"
  echo "voting configuration exclusions cleared"
elif [ -n "{masters}" ]; then
  echo "a removed master is still in the cluster: the voting configuration exclusions stay"
fi
echo "allocation exclusions now: ${{kept:-none}}"
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
    return f"""baseline=$(baseline) || exit 1
read -r status unassigned <<< "$baseline"
for sts in {sets}; do
  update=$($K get statefulset "$sts" -o jsonpath='{{.status.updateRevision}}')
  replicas=$($K get statefulset "$sts" -o jsonpath='{{.spec.replicas}}')
  [ -n "$update" ] && [ -n "$replicas" ] || fail "could not read StatefulSet $sts with kubectl (its \\
updateRevision and replicas); no further pod was restarted"
  for ((i = replicas - 1; i >= 0; i--)); do
    pod="$sts-$i"
    [ "$($K get pod "$pod" -o jsonpath='{revision}')" = "$update" ] && continue
    wait_health "$status" "$unassigned" {upgrading} $((SECONDS + {timeout_seconds})) "before restarting $pod"
    prepare_node "$pod"
    # From here on the pod's own answers do not count.
    AVOID_POD=$pod
    $K delete pod "$pod" --wait=true > /dev/null || fail "could not delete $pod"
    deadline=$((SECONDS + {timeout_seconds}))
    until [ "$($K get pod "$pod" -o jsonpath='{revision}' 2>/dev/null)" = "$update" ] &&
      [ "$($K get pod "$pod" -o jsonpath='{{.status.containerStatuses[0].ready}}' 2>/dev/null)" = true ]; do
      [ "$SECONDS" -lt "$deadline" ] || fail "$pod did not come back ready within {timeout_seconds // 60} minutes; \\
see $K describe pod $pod. No further pod was restarted; run 'pulumi up' again to go on."
      sleep {POLL_SECONDS}
    done
    AVOID_POD=
    gate_node "$pod" "$status" "$unassigned" {upgrading} {timeout_seconds}
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
    body = "".join("".join(line.split()) for line in ca_pem.splitlines() if not line.startswith("-----"))
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
