"""Memory and storage sizes as the JVM, Docker and Kubernetes write them."""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_SIZE = re.compile(r"^(?P<number>[1-9][0-9]*)(?P<unit>[kKmMgGtT])(?:i|b|B)?$")
_FACTOR = {"k": KIB, "m": MIB, "g": GIB, "t": 1024 * GIB}


def parse_size(text: str) -> int:
    """Bytes in a size such as `512m`, `2g` or `2Gi`. Every unit is binary, as in the JVM and Docker."""
    match = _SIZE.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size; write a whole number and a unit, such as 512m, 2g or 2Gi")
    return int(match["number"]) * _FACTOR[match["unit"].lower()]


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
