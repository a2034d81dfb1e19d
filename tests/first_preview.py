"""A stack's first preview under the mocks: the program runs as in `pulumi preview` of a new stack, where
no resource exists yet, so no id and no computed output is known (certificates and keys, generated
passwords, swarm config ids, and everything the program derives from them: a ConfigMap holding the CA, a
container upload of a certificate, a swarm config's data).

The Python SDK then sends each such value to the engine as the unknown sentinel (pulumi/runtime/rpc.py:
`serialize_property` with `UNKNOWN`), which the recording keeps: these renders hold unknowns exactly where
a real first preview has them, which is what the policy pack sees in `pulumi preview --policy-pack`.
`review.mockrun` runs as `pulumi up`; this switches its mocks to preview (pulumi.runtime.set_mocks
`preview=True`) with providers that answer with the inputs alone, as a provider's preview of a create does.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from unittest import mock

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from review import mockrun
from tests.harness import Render, render

UNKNOWN = UNKNOWN_STRING_VALUE  # what the engine hands a policy for a value it does not know


class FirstPreviewMocks(mockrun.RecordingMocks):
    """Providers previewing a create: the inputs come back, with no id and no computed output."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        super().new_resource(args)  # a resource told to fail still fails
        return "", dict(args.inputs)


@cache
def first_preview(stack: str) -> Render:
    set_mocks = pulumi.runtime.set_mocks

    def in_preview(*args: Any, **kwargs: Any) -> None:
        set_mocks(*args, **{**kwargs, "preview": True})

    with (
        mock.patch.object(mockrun, "RecordingMocks", FirstPreviewMocks),
        mock.patch.object(pulumi.runtime, "set_mocks", in_preview),
    ):
        return render(stack)


def unknown_paths(value: Any, path: str = "") -> list[str]:
    """Where a recorded value holds the unknown sentinel (dots for keys, [i] for list items)."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in unknown_paths(item, f"{path}.{key}" if path else key)]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in unknown_paths(item, f"{path}[{index}]")]
    return [path] if value == UNKNOWN else []
