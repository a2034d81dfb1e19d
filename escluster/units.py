"""Memory and storage sizes as the JVM, Docker and Kubernetes write them.

A size is read the way every one of its readers agrees on: `512m`, `2g` (the JVM's and Docker's
binary units) and `2Gi` (Kubernetes' binary units) all mean powers of 1024. `2G` is refused: the JVM
and Docker read it as 2 GiB, Kubernetes as 2·10⁹ bytes, so its meaning depends on the target.
"""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_SIZE = re.compile(r"^(?P<number>[1-9][0-9]*)(?:(?P<jvm>[kmgt])|(?P<kube>[KMGT])i)$")
_AMBIGUOUS = re.compile(r"^(?P<number>[1-9][0-9]*)(?P<unit>[kKmMgGtT])[bB]?$")
_FACTOR = {"k": KIB, "m": MIB, "g": GIB, "t": 1024 * GIB}


def parse_size(text: str) -> int:
    """Bytes in a size such as `512m`, `2g` or `2Gi`; units are binary (powers of 1024)."""
    stripped = text.strip()
    match = _SIZE.match(stripped)
    if match is not None:
        return int(match["number"]) * _FACTOR[(match["jvm"] or match["kube"]).lower()]
    ambiguous = _AMBIGUOUS.match(stripped)
    if ambiguous is not None:
        number, unit = ambiguous["number"], ambiguous["unit"].lower()
        raise ValueError(
            f"{text!r} is ambiguous: Kubernetes reads {unit.upper()} as a power of 1000, the JVM and Docker as "
            f"a power of 1024; write {number}{unit} or {number}{unit.upper()}i (both mean powers of 1024)"
        )
    raise ValueError(f"{text!r} is not a size; write a whole number and a unit, such as 512m, 2g or 2Gi")


def jvm_size(size_bytes: int) -> str:
    """The largest whole JVM unit for a size (`-Xmx` takes k, m or g)."""
    for unit, factor in (("g", GIB), ("m", MIB), ("k", KIB)):
        if size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return str(size_bytes)


def kubernetes_quantity(size_bytes: int) -> str:
    """A binary Kubernetes quantity (`Gi`, `Mi`, `Ki`) equal to the size."""
    for unit, factor in (("Gi", GIB), ("Mi", MIB), ("Ki", KIB)):
        if size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return str(size_bytes)
