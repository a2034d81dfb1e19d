"""The policy pack (policy/elastic_policy) run on a Render as `pulumi preview --policy-pack policy` runs it.

pulumi-policy's server (pulumi_policy/policy.py, `_PolicyAnalyzerServicer.Analyze` and `AnalyzeStack`)
calls each resource policy once per resource and each stack policy once with every resource, always with
the properties wrapped in `unknown_checking_proxy` (pulumi_policy/proxy.py), and turns an
`UnknownValueError` that escapes a policy into one advisory "can't run policy ... during preview" in place
of the rest of that policy. This does the same with pulumi-policy's public classes, so a test sees what a
preview would report. Stack policies get the inputs too: the mocks' outputs are the inputs plus computed
values, which no stack policy reads. tests/test_policy_preview.py checks this against the server itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from elastic_policy.policies import POLICIES
from tests.harness import Registration, Render

MANDATORY, ADVISORY = "mandatory", "advisory"
Policy = ResourceValidationPolicy | StackValidationPolicy


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str  # the pack's policies are all mandatory; advisory is the server's "can't run policy"
    resource: str  # the resource reported on ("" when the server cannot tell)
    message: str

    def __str__(self) -> str:
        return f"[{self.level}] {self.policy} {self.resource}: {self.message}"


def options(resource: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        resource.protect, [], resource.delete_before_replace, [], PolicyCustomTimeouts(0, 0, 0), [], resource.parent
    )


def judge(render: Render, policies: Iterable[Policy] = POLICIES) -> list[Finding]:
    """What the pack reports on a render: every violation, and an advisory wherever a policy could not run."""
    resources = [r for r in render.resources if r.custom]
    chosen = list(policies)
    found = [finding for r in resources for finding in judge_resource(r, chosen)]
    return found + judge_stack(resources, chosen)


def judge_resource(resource: Registration, policies: Iterable[Policy] = POLICIES) -> list[Finding]:
    """What the pack's resource policies report on one resource, as Analyze runs them."""
    proxied = unknown_checking_proxy(resource.inputs)
    args = ResourceValidationArgs(resource.type, proxied, resource.urn, resource.name, options(resource), None)
    return [f for p in policies if isinstance(p, ResourceValidationPolicy) for f in _run(p, args, resource.name)]


def judge_stack(resources: list[Registration], policies: Iterable[Policy] = POLICIES) -> list[Finding]:
    """What the pack's stack policies report on the resources, as AnalyzeStack runs them."""
    names = {r.urn: r.name for r in resources}
    stack = [
        PolicyResource(r.type, unknown_checking_proxy(r.inputs), r.urn, r.name, options(r), None, None, [], {})
        for r in resources
    ]
    args = StackValidationArgs(stack)
    return [f for p in policies if isinstance(p, StackValidationPolicy) for f in _run(p, args, "", names)]


def _run(
    policy: Policy,
    args: ResourceValidationArgs | StackValidationArgs,
    resource: str,
    names: dict[str, str] | None = None,
) -> list[Finding]:
    found: list[Finding] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(Finding(policy.name, MANDATORY, (names or {}).get(urn or "", resource), message))

    try:
        policy.validate(args, report)  # type: ignore[arg-type]
    except UnknownValueError as error:
        found.append(Finding(policy.name, ADVISORY, "", f"can't run policy during preview: {error.message}"))
    return found


def check_policy_pack(render: Render) -> None:
    """The render passes every policy of the pack."""
    findings = judge(render)
    assert not findings, "\n".join(map(str, findings))
