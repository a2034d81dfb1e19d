"""The scripts that change a formed cluster one node at a time, drain nodes before they go, and keep the
allocation and voting exclusions to the nodes leaving. Bash and curl, as the Elasticsearch image has
them; they never print a secret.

Elastic's rolling restart and upgrade procedure (elastic/docs-content deploy-manage/upgrade and
maintenance): before stopping a node, `cluster.routing.allocation.enable: primaries` and `_flush`; after
it rejoined, reset the setting (null) and wait for green, or, during a version upgrade, for yellow with no
initializing or relocating shards (primaries on upgraded nodes cannot have replicas on older ones).
Removing nodes (elastic/cloud-on-k8s driver downscale, Elastic's "add and remove nodes"): exclude a data
node from allocation (`cluster.routing.allocation.exclude._name`) and wait until it holds no shard; put a
master-eligible node in the voting configuration exclusions; clear both once no node is leaving. As ECK
does, the program owns `exclude._name`: it holds exactly the nodes leaving (zen2/voting_exclusions.go and
the downscale's allocation exclusions).

Each script runs after a preamble that defines `es METHOD PATH [BODY]`, which sets ES_CODE and ES_BODY
(ES_CODE 000 when no node answers), and `node_down NODE [URL]`, true only on evidence that the node is not
running: in a throwaway container on the cluster's network for Docker and Swarm (`container_preamble`: its
own address refuses the connection or does not resolve), or through `kubectl exec` into a ready pod for
Kubernetes (`kubectl_preamble`: its pod is not ready).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Protocol

from escluster.security import ADMIN_USER

POLL_SECONDS = 5
GATE_TIMEOUT_SECONDS = 30 * 60
DRAIN_TIMEOUT_SECONDS = 60 * 60
CURL_TIMEOUT_SECONDS = 30
ALLOCATION_ENABLE = "cluster.routing.allocation.enable"
ALLOCATION_EXCLUDE = "cluster.routing.allocation.exclude._name"
# kubectl with the stack's cluster and namespace, as a bash array (a path or context with spaces or a
# quote stays one word).
KUBECTL = '"${K[@]}"'
# The last line of the exclusions step: removed nodes still in the cluster, for the next state.
LINGERING_PREFIX = "lingering:"


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
node_down() {{  # NODE URL: its own address refuses connections or does not resolve (curl 7, 6)
  [ -n "${{2-}}" ] || return 1
  curl --silent --max-time 10 --output /dev/null --cacert {d}/ca.crt "$2/"
  case $? in 6 | 7) return 0 ;; *) return 1 ;; esac
}}
"""


# What runs inside an Elasticsearch pod for one request: the admin's line on stdin, the pod's own CA.
_POD_REQUEST = (
    'IFS= read -r a; curl --silent --max-time {timeout} --cacert {ca} --config <(printf "%s\\n" "$a") '
    '-X "$1" -H "Content-Type: application/json" ${{3:+--data-binary "$3"}} '
    '--write-out "\\n%{{http_code}}" "https://localhost:9200$2"'
)


def kubectl_preamble(kubectl: Sequence[str], selector: str, ca_file: str) -> str:
    """Locally, with kubectl (`kubectl`: its words, cluster and namespace included): the admin's curl config
    line comes on standard input; `es` runs each request in a ready Elasticsearch pod (not AVOID_POD, the
    one being restarted)."""
    request = _POD_REQUEST.format(timeout=CURL_TIMEOUT_SECONDS, ca=ca_file)
    return f"""set -u
# Run locally: associative arrays and empty arrays under set -u need bash 4.4 (macOS ships 3.2), and the
# version check needs sort -V (GNU coreutils).
if [ "${{BASH_VERSINFO[0]}}" -lt 4 ] || {{ [ "${{BASH_VERSINFO[0]}}" = 4 ] && [ "${{BASH_VERSINFO[1]}}" -lt 4 ]; }} ||
  ! printf '1\n2\n' | sort -V > /dev/null 2>&1; then
  echo "this step needs bash 4.4 or newer and a sort with -V (on macOS: brew install bash coreutils)" >&2
  exit 1
fi
IFS= read -r ADMIN_LINE
AVOID_POD=
K=({" ".join(_q(word) for word in kubectl)})
ready_pods() {{
  {KUBECTL} get pods -l {_q(selector)} \\
    -o jsonpath='{{range .items[?(@.status.containerStatuses[0].ready==true)]}}{{.metadata.name}}{{" "}}{{end}}'
}}
pods() {{
  {KUBECTL} get pods -l {_q(selector)} -o jsonpath='{{range .items[*]}}{{.metadata.name}}{{" "}}{{end}}'
}}
es() {{  # METHOD PATH [BODY]
  ES_CODE=000
  ES_BODY=
  local pod out
  for pod in $(ready_pods); do
    [ "$pod" = "$AVOID_POD" ] && continue
    out=$(printf '%s\\n' "$ADMIN_LINE" |
      {KUBECTL} exec -i "$pod" -c elasticsearch -- bash -c {_q(request)} es "$1" "$2" "${{3-}}") || continue
    ES_CODE=${{out##*$'\\n'}}
    ES_BODY=${{out%$'\\n'*}}
    [ "$ES_CODE" != 000 ] && return 0
  done
  return 0
}}
node_down() {{  # POD: it is not ready (not running, or not answering its probe)
  [ "$({KUBECTL} get pod "$1" -o jsonpath='{{.status.containerStatuses[0].ready}}' 2> /dev/null)" != true ]
}}
"""


# Helpers over `es`: JSON fields of a flat answer, retries, the cluster's health, nodes and settings.
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
languid_health() {  # the health once the master has no pending task (the reroute after a settings change)
  es GET '/_cluster/health?wait_for_events=languid&timeout=10s'
  [ "$ES_CODE" = 200 ]
}
moving_shards() {
  echo $(($(field initializing_shards) + $(field relocating_shards)))
}
health_reached() {  # STATUS UNASSIGNED UPGRADE: no worse than the health before the change
  case "$1" in red|none) return 0 ;; esac  # nothing left to keep: the node's return is what counts
  languid_health || return 1
  case "$(field status)" in
    green) return 0 ;;
    yellow)
      [ "$(moving_shards)" = 0 ] || return 1
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
node_state() {  # NODE: present, absent (the cluster answered without it) or unknown (no answer)
  es_retry GET '/_cat/nodes?h=name'
  if [ "$ES_CODE" != 200 ]; then echo unknown
  elif printf '%s\n' "$ES_BODY" | grep -qx "$1"; then echo present
  else echo absent
  fi
}
node_present() {
  es GET '/_cat/nodes?h=name'
  [ "$ES_CODE" = 200 ] && printf '%s\n' "$ES_BODY" | grep -qx "$1"
}
node_names() {
  es_retry GET '/_cat/nodes?h=name'
  [ "$ES_CODE" = 200 ] && printf '%s\n' "$ES_BODY"
}
shards_on() {  # shards a node holds or is moving (a relocating one reads "from -> ip id to")
  es GET '/_cat/shards?h=node'
  [ "$ES_CODE" = 200 ] || { echo unknown; return; }
  printf '%s\n' "$ES_BODY" | awk -v n="$1" '$1 == n || $NF == n { c++ } END { print c + 0 }'
}
allocation() {  # the persistent cluster.routing.allocation.enable, empty when unset
  es_retry GET '/_cluster/settings?flat_settings=true'
  [ "$ES_CODE" = 200 ] || fail "could not read the cluster settings: HTTP $ES_CODE"
  printf '%s' "$ES_BODY" | grep -o '"persistent" *: *{[^}]*}' | grep -o '"ALLOCATION_ENABLE" *: *"[^"]*"' |
    sed 's/^[^:]*: *"//; s/"$//'
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
# ECK's rolling upgrade does, a node shown not to run (the cluster answered without it, or nothing answers
# and the node is down) changes whatever the cluster's health: that is how a broken change is undone, on a
# red cluster or on a single node that is down. A node in the cluster restarts only while the cluster is
# green, or yellow with no shard moving; one whose state cannot be told is left alone.
_STEPS = r"""baseline() {  # prints the health every gate returns to: STATUS UNASSIGNED ("none -": no answer)
  es_retry GET /_cluster/health
  if [ "$ES_CODE" != 200 ]; then
    echo "no node answered (HTTP $ES_CODE): only nodes shown not to run change" >&2
    echo "none -"
    return 0
  fi
  local status
  status=$(field status)
  [ "$status" = red ] && echo "$(health_line): only nodes that are not in the cluster change" >&2
  echo "$status $(field unassigned_shards)"
}
newer_nodes() {  # VERSION: the nodes that run a newer version (none can be downgraded)
  es_retry GET '/_cat/nodes?h=name,version'
  [ "$ES_CODE" = 200 ] || return 0
  local name version
  while read -r name version; do
    [ -n "$version" ] && [ "$version" != "$1" ] &&
      [ "$(printf '%s\n%s\n' "$version" "$1" | sort -V | tail -n 1)" = "$version" ] && printf '%s ' "$name"
  done <<< "$ES_BODY"
}
prepare_node() {  # NODE URL TIMEOUT VERSION [MASTER...]: hold replicas where they are while it restarts, and
  local node=$1 url=${2-} version=${4-} deadline=$((SECONDS + ${3:-GATE_TIMEOUT}))  # flush. MASTERS: the
  shift 4 || shift $#  # other master-eligible nodes, given for a master-eligible NODE
  local newer
  newer=$(newer_nodes "$version")
  [ -z "$newer" ] || fail "not restarting $node: ${newer% } already run a version newer than $version, and \
Elasticsearch cannot downgrade a node. Set cluster.version to the newest version running, then run 'pulumi up'."
  set -- "$node" "$url" "$@"
  case "$(node_state "$1")" in
    absent)
      echo "$1 is not in the cluster: it changes without holding replicas (prepared at $(date +%s%N))"
      return 0 ;;
    unknown)
      node_down "$1" "${2-}" || fail "no node says whether $1 is in the cluster, and $1 is not shown to be down: \
not restarting it. Run 'pulumi up' again once the cluster answers."
      echo "no node answers and $1 is down: it changes without holding replicas (prepared at $(date +%s%N))"
      return 0 ;;
  esac
  local master missing=
  for master in "${@:3}"; do
    node_present "$master" || missing="$missing $master"
  done
  [ -z "$missing" ] || fail "not restarting $1: master-eligible${missing} not in the cluster, and restarting \
another master now could lose the quorum. Bring${missing} back first (a node not in the cluster changes \
whatever the cluster's health), then run 'pulumi up' again."
  until languid_health && { [ "$(field status)" = green ] || { [ "$(field status)" = yellow ] &&
    [ "$(moving_shards)" = 0 ]; }; }; do
    [ "$ES_CODE" = 200 ] && [ "$(field status)" = red ] && fail "not restarting $1: $(health_line). While the \
cluster is red only nodes that are not in it change; bring those back first (fix their settings), then run \
'pulumi up' again."
    [ "$SECONDS" -lt "$deadline" ] || fail "not restarting $1: shards are still moving ($(health_line)). Run \
'pulumi up' again once the cluster has settled."
    sleep POLL
  done
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
""".replace("POLL", str(POLL_SECONDS)).replace("GATE_TIMEOUT", str(GATE_TIMEOUT_SECONDS))
LIBRARY = _HELPERS + _STEPS


def baseline_script() -> str:
    """Before a change: prints the cluster's health, which every gate waits to get back to."""
    return "baseline\n"


def prepare_script(
    node: str,
    url: str,
    version: str,
    other_masters: Sequence[str] = (),
    timeout_seconds: int = GATE_TIMEOUT_SECONDS,
) -> str:
    """Right before a node restarts: refuse when a node already runs a newer `version` than the target, or
    (for a master-eligible node) when one of `other_masters` is out of the cluster (ECK's
    one_master_at_a_time); wait until no shard moves, hold replicas where they are, and flush (`url`: the
    node's own address, to tell a node that is down). Prints a line that differs on every run, so the
    node's gate (which takes it as an input) runs whenever its prepare did."""
    if not version:
        raise ValueError("prepare_script needs the version the change goes to")
    masters = "".join(f" {_q(m)}" for m in other_masters)
    return f"prepare_node {_q(node)} {_q(url)} {timeout_seconds} {_q(version)}{masters}\n"


def gate_script(node: str, baseline: str, upgrade: bool, timeout_seconds: int = GATE_TIMEOUT_SECONDS) -> str:
    """After a node restarted: it rejoined, allocation is back on, and the cluster's health is back to
    `baseline` (the baseline's line: status and unassigned shards), or, when upgrading, yellow without
    moving shards. Otherwise fail, naming the node and the cluster's state: the nodes after it depend on
    this step, so none of them is touched."""
    status, _, unassigned = baseline.partition(" ")
    return f"gate_node {_q(node)} {_q(status)} {_q(unassigned or '-')} {1 if upgrade else 0} {timeout_seconds}\n"


def exclusions_script(leaving: Sequence[LeavingNode], lingering: Sequence[LeavingNode]) -> str:
    """First on a formed cluster, then the drain: `exclude._name` holds exactly the nodes leaving now and
    those an earlier run removed that are still in the cluster (`lingering`: Pulumi could not delete them);
    the voting exclusions are cleared when no master-eligible node is among either (without waiting, as
    ECK does, so one set by hand does not block). Its last line names the lingering nodes still there."""
    names = " ".join(_q(n.name) for n in lingering)
    masters = " ".join(_q(n.name) for n in [*leaving, *lingering] if n.master_eligible)
    leaving_list = ",".join(n.name for n in leaving)
    return f"""present=$(node_names) || fail "could not list the cluster's nodes; no exclusion was changed"
# Replicas held by a run that stopped between a prepare and its gate would keep any drain from moving them
# (EnableAllocationDecider: PRIMARIES refuses replicas); no node is being restarted now.
enable=$(allocation) || exit 1
[ "$enable" = primaries ] && set_allocation null
wanted={_q(leaving_list)}
still=
for name in {names}; do
  printf '%s\\n' "$present" | grep -qx "$name" || continue
  echo "$name was removed but is still in the cluster: it stays excluded"
  still="$still $name"
  wanted="${{wanted:+$wanted,}}$name"
done
current=$(excluded) || exit 1
[ "$current" = "$wanted" ] || set_excluded "$wanted"
voters_leaving=
for name in {masters}; do
  printf '%s\\n' "$present" | grep -qx "$name" && voters_leaving=yes
done
if [ -z "$voters_leaving" ]; then
  es_retry DELETE '/_cluster/voting_config_exclusions?wait_for_removal=false'
  [ "$ES_CODE" = 200 ] || fail "could not clear the voting configuration exclusions: HTTP $ES_CODE $ES_BODY"
fi
echo "allocation exclusions: ${{wanted:-none}}"
echo "{LINGERING_PREFIX}$still"
"""


def drain_script(nodes: Sequence[LeavingNode], timeout_seconds: int = DRAIN_TIMEOUT_SECONDS) -> str:
    """Before nodes are removed, one at a time: exclude each from allocation and wait until it holds no
    shard; take a master-eligible one out of the voting configuration."""
    return "".join(f"drain_node {_q(n.name)} {1 if n.master_eligible else 0} {timeout_seconds}\n" for n in nodes)


def lingering_nodes(stdout: str) -> tuple[str, ...]:
    """The removed nodes the exclusions step found still in the cluster (its last line)."""
    lines = [line for line in stdout.strip().splitlines() if line.startswith(LINGERING_PREFIX)]
    return tuple(lines[-1].removeprefix(LINGERING_PREFIX).split()) if lines else ()


def admin_stdin(admin_line: str, ca_pem: str) -> str:
    """Standard input of a container-run script: the admin's curl config line, then the CA."""
    assert admin_line.startswith('user = "' + ADMIN_USER + ":")
    return admin_line + ca_pem


def kubernetes_roll_script(
    statefulsets: Sequence[str],
    master_sets: Sequence[str],
    version: str,
    upgrade: bool,
    timeout_seconds: int = GATE_TIMEOUT_SECONDS,
) -> str:
    """With `updateStrategy: OnDelete`, a changed pod template waits for us. Once the controller has seen
    every StatefulSet's latest spec (given in Elastic's order; `master_sets` hold master-eligible pods):
    first the pods on an old revision that are not ready (ECK restarts an unhealthy pod first: that is how
    a broken change is undone), then the others, highest ordinal first (as the StatefulSet controller
    would), each prepared and gated like any node (ECK's rolling upgrade); then wait for every pod, new ones
    included, to be ready and in the cluster (pulumi-kubernetes does not wait for a formed cluster's
    StatefulSets, so a broken pod never blocks the `up` that fixes it). Allocation is released at the end
    whatever happened before."""
    sets = " ".join(_q(s) for s in statefulsets)
    masters = " ".join(_q(s) for s in master_sets)
    upgrading = 1 if upgrade else 0
    revision = "{.metadata.labels.controller-revision-hash}"
    ready = "{.status.containerStatuses[0].ready}"
    kubectl = f"{KUBECTL} --request-timeout={CURL_TIMEOUT_SECONDS}s"
    return f"""baseline=$(baseline) || exit 1
read -r status unassigned <<< "$baseline"
sts_field() {{  # STATEFULSET JSONPATH
  {kubectl} get statefulset "$1" -o jsonpath="$2"
}}
declare -A update replicas
master_pods=()
for sts in {sets}; do
  deadline=$((SECONDS + {timeout_seconds}))
  while :; do
    generation=$(sts_field "$sts" '{{.metadata.generation}}') && [ -n "$generation" ] &&
      observed=$(sts_field "$sts" '{{.status.observedGeneration}}') ||
      fail "could not read StatefulSet $sts with kubectl; no further pod was restarted"
    [ "${{observed:-0}}" -ge "$generation" ] && break
    [ "$SECONDS" -lt "$deadline" ] || fail "the StatefulSet controller has not seen $sts's latest spec \\
within {timeout_seconds // 60} minutes; no further pod was restarted"
    sleep {POLL_SECONDS}
  done
  update[$sts]=$(sts_field "$sts" '{{.status.updateRevision}}')
  replicas[$sts]=$(sts_field "$sts" '{{.spec.replicas}}')
  [ -n "${{update[$sts]}}" ] && [ -n "${{replicas[$sts]}}" ] || fail "could not read the updateRevision and \\
replicas of StatefulSet $sts with kubectl; no further pod was restarted"
done
for sts in {masters}; do
  for ((i = 0; i < replicas[$sts]; i++)); do master_pods+=("$sts-$i"); done
done
restart_pod() {{  # POD STATEFULSET: prepare, delete, wait for it on the new revision, gate
  local pod=$1 others=() m
  case " {masters} " in
    *" $2 "*) for m in "${{master_pods[@]}}"; do [ "$m" = "$pod" ] || others+=("$m"); done ;;
  esac
  wait_health "$status" "$unassigned" {upgrading} $((SECONDS + {timeout_seconds})) "before restarting $pod"
  prepare_node "$pod" "" {timeout_seconds} {_q(version)} ${{others[@]+"${{others[@]}}"}}
  # From here on the pod's own answers do not count.
  AVOID_POD=$pod
  {kubectl} delete pod "$pod" --ignore-not-found --wait=true --timeout={timeout_seconds}s > /dev/null ||
    fail "could not delete $pod within {timeout_seconds // 60} minutes (see kubectl describe pod $pod); no \\
further pod was restarted"
  local deadline=$((SECONDS + {timeout_seconds}))
  until [ "$({kubectl} get pod "$pod" -o jsonpath='{revision}' 2> /dev/null)" = "${{update[$2]}}" ] &&
    [ "$({kubectl} get pod "$pod" -o jsonpath='{ready}' 2> /dev/null)" = true ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$pod did not come back ready within {timeout_seconds // 60} minutes; \\
see kubectl describe pod $pod. No further pod was restarted; run 'pulumi up' again to go on."
    sleep {POLL_SECONDS}
  done
  AVOID_POD=
  gate_node "$pod" "$status" "$unassigned" {upgrading} {timeout_seconds}
}}
for pass in unready all; do
  for sts in {sets}; do
    for ((i = replicas[$sts] - 1; i >= 0; i--)); do
      pod="$sts-$i"
      current=$({kubectl} get pod "$pod" --ignore-not-found -o jsonpath='{revision}') ||
        fail "could not read pod $pod with kubectl; no further pod was restarted"
      # A pod that does not exist is made from the current template; the wait below covers it.
      [ -z "$current" ] || [ "$current" = "${{update[$sts]}}" ] && continue
      if [ "$pass" = unready ]; then
        # Out: not ready, or not listed by a cluster that answers (no answer is not "out": a pod with quorum
        # lost still answers its probe, and the masters that restore it must not wait behind it).
        [ "$({kubectl} get pod "$pod" -o jsonpath='{ready}' 2> /dev/null)" = true ] &&
          [ "$(node_state "$pod")" != absent ] && continue
      fi
      restart_pod "$pod" "$sts"
    done
  done
done
for sts in {sets}; do
  for ((i = 0; i < replicas[$sts]; i++)); do
    pod="$sts-$i"
    deadline=$((SECONDS + {timeout_seconds}))
    until [ "$({kubectl} get pod "$pod" -o jsonpath='{ready}' 2> /dev/null)" = true ] && node_present "$pod"; do
      [ "$SECONDS" -lt "$deadline" ] || fail "$pod is not ready and in the cluster within \\
{timeout_seconds // 60} minutes; see kubectl describe pod $pod. Run 'pulumi up' again once it is."
      sleep {POLL_SECONDS}
    done
  done
done
enable=$(allocation) || exit 1
[ "$enable" = primaries ] && set_allocation null
wait_health "$status" "$unassigned" {upgrading} $((SECONDS + {timeout_seconds})) "after the roll"
echo "every pod runs its StatefulSet's current template and is in the cluster"
"""
