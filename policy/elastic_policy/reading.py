"""Reading resource inputs one value at a time, so that a value a preview does not know yet costs only
the check that needs it.

During a preview the engine sends every value it cannot know yet (a certificate not yet made, a generated
password, an id) as a sentinel string, and pulumi-policy hands a policy the inputs wrapped in a proxy that
raises `UnknownValueError` when such a value is read (pulumi_policy/proxy.py: `unknown_checking_proxy`).
If that error leaves a policy, pulumi-policy stops the policy for the resource and reports one *advisory*
"can't run policy ... during preview" in its place (pulumi_policy/policy.py:
`_PolicyAnalyzerServicer.Analyze`): every violation the policy would have found after it is lost.

So the policies read every value through `read` (or `get_path`, `elements`, `keys`), which turns the error
into `UNKNOWN` for that value alone; each check decides what an unknown value means for it, and the others
run on. `pulumi up` runs a resource policy again, with every input known, just before the resource's step.

`UnknownValueError` comes from `pulumi_policy.proxy`: a public module (no underscore) whose error class
says it is what reading an unknown raises, but which the package does not re-export. It is the exact class
the server catches; requirements.txt pins pulumi-policy, and a rename fails the pack's import loudly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _unknown_errors() -> tuple[type[Exception], ...]:
    try:
        from pulumi_policy.proxy import UnknownValueError  # noqa: PLC0415
    except ModuleNotFoundError:  # the offline review (review/) reads plain renders, without pulumi-policy
        return ()
    return (UnknownValueError,)


UNKNOWN_ERRORS = _unknown_errors()


class Unknown:
    """A value the preview does not know yet: equal to nothing else, an instance of no type a check reads."""

    def __repr__(self) -> str:
        return "<not known until the update>"


UNKNOWN = Unknown()


def read(container: Any, key: str | int) -> Any:
    """`container[key]`: UNKNOWN when that value (or the container) is not known yet, None when it is missing."""
    if container is UNKNOWN:
        return UNKNOWN
    is_list = isinstance(container, Sequence) and not isinstance(container, str)
    if not (isinstance(container, Mapping) or (is_list and isinstance(key, int))):
        return None
    try:
        return container[key]
    except UNKNOWN_ERRORS:
        return UNKNOWN
    except (KeyError, IndexError):
        return None


def get_path(value: Any, *path: str | int) -> Any:
    """The value at `path` in nested mappings and lists: UNKNOWN where a step is not known, None where missing."""
    for key in path:
        value = read(value, key)
    return value


def elements(sequence: Any) -> list[Any]:
    """A list's items, each UNKNOWN if it is not known; nothing when the list itself is missing or unknown."""
    if not isinstance(sequence, Sequence) or isinstance(sequence, str):
        return []
    return [read(sequence, index) for index in range(len(sequence))]  # len() reads no value


def keys(mapping: Any) -> list[str]:
    """A mapping's keys (always known: only values can be unknown); nothing when it is missing or unknown."""
    return [str(key) for key in mapping] if isinstance(mapping, Mapping) else []


def plain(value: Any) -> Any:
    """A copy as dicts and lists with UNKNOWN in place of each value not known: for small parts a check
    compares as a whole (labels, selectors)."""
    if isinstance(value, Mapping):
        return {key: plain(read(value, key)) for key in keys(value)}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(item) for item in elements(value)]
    return value


def text(value: Any, missing: str = "") -> str:
    """A name for a message: the value, or a placeholder when it is missing or not known yet."""
    if value is UNKNOWN:
        return "(not known yet)"
    return missing if value is None else str(value)
