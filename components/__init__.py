"""Pulumi ComponentResources that turn an `escluster.plan.ClusterPlan` into resources."""

PACKAGE = "escluster"


def component_type(name: str) -> str:
    """The type token every component of this program registers under."""
    return f"{PACKAGE}:index:{name}"
