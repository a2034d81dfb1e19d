"""Check a deployed stack, one line per check, exit 1 on any failure:

    python -m verify --stack dev                  # reads `pulumi stack output --json --show-secrets`
    python -m verify --outputs outputs.json       # the same JSON, saved
    python -m verify --stack prod --elasticsearch-url https://localhost:9200 --kibana-url http://localhost:5601

The URLs default to the stack's `elasticsearch_url` and `kibana_url`; give them when those are not
reachable from here (a Kubernetes Service without a LoadBalancer: `kubectl port-forward`). The HTTPS
certificate must name the host of the URL used.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from escluster.state import parse_state
from verify.checks import Deployment, verify

PROJECT_DIR = Path(__file__).resolve().parent.parent


class VerifyError(Exception):
    """The outputs do not describe a deployment this can check."""


def stack_outputs(stack: str | None) -> dict[str, Any]:
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", *(["--stack", stack] if stack else [])]
    try:
        result = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise VerifyError("the pulumi CLI is not installed; save the outputs elsewhere and give --outputs") from None
    if result.returncode != 0:
        raise VerifyError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
    outputs: dict[str, Any] = json.loads(result.stdout)
    return outputs


def deployment(outputs: dict[str, Any], elasticsearch_url: str | None, kibana_url: str | None) -> Deployment:
    state = parse_state(outputs.get("cluster_state"))
    if state is None:
        raise VerifyError("the stack has no cluster_state: no `pulumi up` of it has completed")
    url = elasticsearch_url or outputs.get("elasticsearch_url")
    if not url:
        raise VerifyError("the stack publishes no HTTPS port: give --elasticsearch-url (e.g. through a port-forward)")
    for key in ("ca_certificate", "elastic_password"):
        if not outputs.get(key):
            raise VerifyError(f"the outputs have no {key} (read them with --show-secrets)")
    return Deployment(
        elasticsearch_url=str(url),
        kibana_url=kibana_url or outputs.get("kibana_url"),
        ca_pem=str(outputs["ca_certificate"]),
        elastic_password=str(outputs["elastic_password"]),
        state=state,
        certificate_expiry=outputs.get("certificate_expiry") or {},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack", help="the stack to read the outputs of (default: the selected one)")
    source.add_argument("--outputs", type=Path, help="a file holding `pulumi stack output --json --show-secrets`")
    parser.add_argument("--elasticsearch-url", help="where to reach Elasticsearch (default: the stack's)")
    parser.add_argument("--kibana-url", help="where to reach Kibana (default: the stack's)")
    args = parser.parse_args(argv)
    try:
        outputs = json.loads(args.outputs.read_text()) if args.outputs else stack_outputs(args.stack)
        target = deployment(outputs, args.elasticsearch_url, args.kibana_url)
    except (VerifyError, ValueError, OSError) as error:
        print(f"FAIL outputs: {error}")
        return 1
    results = verify(target)
    for result in results:
        print(result.line())
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
