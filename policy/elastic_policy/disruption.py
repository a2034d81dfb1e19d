"""PodDisruptionBudgets (docs/rules.md "Kubernetes"): each budget's own shape is a resource policy, judged
before the budget is created; that every Elasticsearch StatefulSet has one is a stack policy, judged once
all resources are known (once, at the end of a preview or an update)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from elastic_policy.reading import UNKNOWN, Unknown, elements, get_path, keys, plain, read
from elastic_policy.workloads import STATEFULSET, containers

PDB = "kubernetes:policy/v1:PodDisruptionBudget"
# Budgets that allow no voluntary disruption: `kubectl drain` of a node running such a pod never ends.
NO_DISRUPTION = {"maxUnavailable": (0, "0%"), "minAvailable": ("100%",)}


def check_budget(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != PDB:
        return
    spec = read(args.props, "spec")
    selector = read(spec, "selector")
    if selector is not UNKNOWN:
        expressions = read(selector, "matchExpressions")
        if expressions is not UNKNOWN and elements(expressions):
            report("the budget selects pods by matchExpressions; select them by matchLabels only", None)
        labels = read(selector, "matchLabels")
        if labels is not UNKNOWN and not keys(labels):
            report(
                "spec.selector.matchLabels names no label: the budget selects no pod (no selector) or every "
                "pod of its namespace (an empty one)",
                None,
            )
    for field, blocking in NO_DISRUPTION.items():
        value = read(spec, field)
        if value is not UNKNOWN and value is not None and value in blocking:
            report(f"{field}: {value} allows no voluntary disruption, so draining a node never ends", None)


def _namespace(props: Mapping[str, Any]) -> str | Unknown:
    namespace = get_path(props, "metadata", "namespace")
    return namespace if namespace is UNKNOWN else str(namespace or "default")


def _covers(budget: Mapping[str, Any], namespace: str | Unknown, pod_labels: Any) -> bool | Unknown:
    """Whether the budget selects the pods: UNKNOWN when that depends on a value the preview does not know."""
    selector = plain(get_path(budget, "spec", "selector"))
    budget_namespace = _namespace(budget)
    if UNKNOWN in (selector, budget_namespace, namespace, pod_labels):
        return UNKNOWN
    if budget_namespace != namespace or not isinstance(selector, dict) or not isinstance(pod_labels, dict):
        return False
    match, expressions = selector.get("matchLabels"), selector.get("matchExpressions")
    if isinstance(expressions, Unknown) or isinstance(match, Unknown):
        return UNKNOWN
    if not isinstance(match, dict) or not match or expressions:
        return False
    pairs = [(pod_labels.get(key), value) for key, value in match.items()]
    if any(UNKNOWN not in pair and pair[0] != pair[1] for pair in pairs):
        return False
    return UNKNOWN if any(UNKNOWN in pair for pair in pairs) else True


def check_coverage(args: StackValidationArgs, report: ReportViolation) -> None:
    budgets = [r.props for r in args.resources if r.resource_type == PDB]
    for statefulset in args.resources:
        if statefulset.resource_type != STATEFULSET:
            continue
        if not any(c.runs_elasticsearch for c in containers(STATEFULSET, statefulset.props)):
            continue
        namespace = _namespace(statefulset.props)
        pod_labels = plain(get_path(statefulset.props, "spec", "template", "metadata", "labels"))
        verdicts = [_covers(budget, namespace, pod_labels) for budget in budgets]
        if not any(verdict is True or verdict is UNKNOWN for verdict in verdicts):
            report(
                f"StatefulSet {statefulset.name}: no PodDisruptionBudget in its namespace selects its pods",
                statefulset.urn,
            )
