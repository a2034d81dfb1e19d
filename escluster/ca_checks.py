"""The checks of a CA rotation (escluster.changes.CaPlan), as bash: in a task container for Docker and
Swarm, after the kubectl preamble (escluster/rolling.py) for Kubernetes. They never print a secret."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from escluster.rolling import CURL_TIMEOUT_SECONDS, KUBECTL, POLL_SECONDS


def _q(text: str) -> str:
    return shlex.quote(text)


# The kubelet copies a changed Secret into running pods within its sync period (a minute or so), and a node
# serves a new certificate a few seconds later: each check asks again until this deadline.
CA_CHECK_TIMEOUT_SECONDS = 300
# Elasticsearch reloads changed certificate files every `resource.reload.interval.high` (5 s; elastic/
# elasticsearch x-pack core SSLConfigurationReloader watches them at Frequency.HIGH): twice that, once
# every pod has the new trust bundle, before certificates from the new CA go out.
RELOAD_WAIT_SECONDS = 10


def _presents_new_ca(generation: int, where: str, then: str) -> str:
    """Asked with only the new CA trusted, a handshake succeeds (any HTTP status) only when the node's
    certificate chains to that CA; "000" is a failed handshake or no answer. `$code` holds the status."""
    return f"""case "$code" in
      [1-5][0-9][0-9]) break ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || fail "{where} does not present a certificate from CA generation {generation} \\
(or does not answer) after $((check_timeout / 60)) minutes: the old CA stays in the trust bundles. {then}\""""


def _until(check: str) -> str:
    """Runs `check` (which `break`s when it passes, fails at the deadline) until it passes."""
    return f"""deadline=$((SECONDS + check_timeout))
  while :; do
    {check}
    sleep {POLL_SECONDS}
  done"""


def issuer_check_script(urls: Sequence[str], ca_pem: str, generation: int, directory: str) -> str:
    """Step 3 of a CA rotation (escluster.changes.CaPlan), in a task container, before the old CA leaves the
    trust bundles: every node presents a certificate from the new CA (`ca_pem`)."""
    if not urls:
        raise ValueError("the issuer check needs the nodes' URLs")
    ca_file = _q(f"{directory}/issuing.crt")
    check = f"""code=$(curl --silent --max-time {CURL_TIMEOUT_SECONDS} --output /dev/null \\
      --write-out '%{{http_code}}' --cacert {ca_file} "$url/")
    {_presents_new_ca(generation, "$url", "Run 'pulumi up' again once every node runs its new certificate.")}"""
    return f"""set -u
check_timeout={CA_CHECK_TIMEOUT_SECONDS}
fail() {{
  echo "$*" >&2
  exit 1
}}
printf '%s' {_q(ca_pem)} > {ca_file}
for url in {" ".join(_q(u) for u in urls)}; do
  {_until(check)}
done
echo "every node presents a certificate from CA generation {generation}"
"""


# In an Elasticsearch pod: the status of a request to itself trusting only the CA given as $1.
_POD_HANDSHAKE = (
    f'curl --silent --max-time {CURL_TIMEOUT_SECONDS} --output /dev/null --write-out "%{{http_code}}" '
    '--cacert <(printf "%s" "$1") https://localhost:9200/'
)


# The loop over the cluster's pods; no pod listed is a failure, not a pass.
_EVERY_POD = f"""check_timeout={CA_CHECK_TIMEOUT_SECONDS}
listed=$(pods) && [ -n "$listed" ] || fail "could not list the Elasticsearch pods; nothing was changed"
for pod in $listed; do"""


def kubernetes_issuer_check_script(ca_pem: str, generation: int) -> str:
    """Step 3 on Kubernetes, after the kubectl preamble: every Elasticsearch pod presents a
    certificate from the new CA (the kubelet updates a mounted Secret some time after it changed, and the
    node reloads the files a few seconds later). A pod that does not answer keeps the old CA in place."""
    check = f"""code=$({KUBECTL} exec "$pod" -c elasticsearch -- \\
      bash -c {_q(_POD_HANDSHAKE)} check {_q(ca_pem)} 2>/dev/null)
    {_presents_new_ca(generation, "$pod", "Run 'pulumi up' again in a minute.")}"""
    return f"""{_EVERY_POD}
  {_until(check)}
done
echo "every pod presents a certificate from CA generation {generation}"
"""


def kubernetes_trust_check_script(ca_pem: str, generation: int, ca_file: str) -> str:
    """Step 2 on Kubernetes, before certificates from the new CA reach the pods: every pod's mounted
    trust bundle (`ca_file`) holds the new CA (step 1 put it in the Secret; the kubelet copies it later),
    and its node had time to reload it."""
    body = "".join("".join(line.split()) for line in ca_pem.splitlines() if not line.startswith("-----"))
    check = f"""bundle=$({KUBECTL} exec "$pod" -c elasticsearch -- cat {_q(ca_file)} 2>/dev/null) || bundle=
    case "$(printf '%s' "$bundle" | tr -d ' \\r\\n')" in
      *{_q(body)}*) break ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || fail "$pod does not trust CA generation {generation} after \\
$((check_timeout / 60)) minutes (the kubelet has not updated its files, or they cannot be read): no certificate \\
from it is issued. Run 'pulumi up' again once it does.\""""
    return f"""{_EVERY_POD}
  {_until(check)}
done
sleep {RELOAD_WAIT_SECONDS}
echo "every pod trusts CA generation {generation}"
"""
