"""What a workload is made from, as a short digest: a new one tells a roll step to run again."""

from __future__ import annotations

import hashlib

import pulumi


def spec_digest(*parts: pulumi.Input[str]) -> pulumi.Output[str]:
    """A short digest of what a node runs: it changes when the node must restart."""
    return pulumi.Output.all(*parts).apply(
        lambda values: hashlib.sha256("\0".join(str(v) for v in values).encode()).hexdigest()[:16]
    )
