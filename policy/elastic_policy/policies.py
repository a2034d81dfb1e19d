"""The policy pack's policies (docs/rules.md names the rule each enforces). Resource policies judge one
resource from its own inputs, in a preview before anything is created and again just before the resource's
step in `pulumi up`; stack policies judge references between resources, once all of them are known."""

from __future__ import annotations

from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from elastic_policy import content, disruption, metallb

POLICIES = (
    ResourceValidationPolicy(
        name="elasticsearch-tls",
        description="TLS on both Elasticsearch layers with certificate and key; Kibana on https trusting the CA.",
        validate=content.check_tls,
    ),
    ResourceValidationPolicy(
        name="no-plaintext-passwords",
        description="No password, token or key as a literal env value, from a ConfigMap, or in a settings file.",
        validate=content.check_no_plaintext_passwords,
    ),
    ResourceValidationPolicy(
        name="elasticsearch-heap",
        description="Every Elasticsearch container has a memory limit; Xms = Xmx, at most half of it, under 31 GiB.",
        validate=content.check_heap,
    ),
    ResourceValidationPolicy(
        name="pod-disruption-budget",
        description="A PodDisruptionBudget selects pods by matchLabels and allows a voluntary disruption.",
        validate=disruption.check_budget,
    ),
    ResourceValidationPolicy(
        name="metallb-objects",
        description="MetalLB pools are named and hold valid, non-overlapping addresses; advertisements name a "
        "pool once; LoadBalancer Services ask for IP addresses.",
        validate=metallb.check_object,
    ),
    StackValidationPolicy(
        name="elasticsearch-pdb",
        description="Every Elasticsearch StatefulSet has a PodDisruptionBudget selecting its pods.",
        validate=disruption.check_coverage,
    ),
    StackValidationPolicy(
        name="metallb-references",
        description="Advertisements and LoadBalancer Services name existing pools; fixed IPs lie in them.",
        validate=metallb.check_references,
    ),
)
