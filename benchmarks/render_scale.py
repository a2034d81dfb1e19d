"""Render lab-like stacks of many nodes under Pulumi's mocks and print seconds per stack.

    .venv/bin/python -m benchmarks.render_scale [NODES ...]

Each stack: 3 master-eligible nodes and the rest data nodes, spread over one Docker host per
five nodes, Kibana on the first host. Timing covers the whole program run: config validation,
plan, and every resource registration.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tests.harness import PROJECT, render

DEFAULT_SIZES = (15, 50, 150)
NODES_PER_HOST = 5
MASTERS = 3


def lab_like(nodes: int) -> dict[str, Any]:
    hosts = [
        {
            "name": f"host{i}",
            "engine": f"ssh://elastic@10.0.{i // 250}.{i % 250 + 1}",
            "address": f"10.0.{i // 250}.{i % 250 + 1}",
        }
        for i in range(max(MASTERS, -(-nodes // NODES_PER_HOST)))
    ]
    names = [h["name"] for h in hosts]
    return {
        f"{PROJECT}:target": "docker",
        f"{PROJECT}:docker_hosts": hosts,
        f"{PROJECT}:cluster": {
            "name": "bench",
            "node_groups": [
                {"name": "master", "count": MASTERS, "roles": ["master"], "placement": names[:MASTERS]},
                {"name": "data", "count": nodes - MASTERS, "roles": ["data", "ingest"], "memory": "8g"},
            ],
        },
        f"{PROJECT}:kibana": {"replicas": 1},
    }


def time_render(nodes: int) -> tuple[float, int]:
    start = time.perf_counter()
    result = render("bench", lab_like(nodes))
    return time.perf_counter() - start, len(result.resources)


def main(sizes: list[int]) -> None:
    time_render(3)  # warm up imports
    print(f"{'nodes':>6} {'resources':>10} {'seconds':>8} {'ms/node':>8}")
    for nodes in sizes:
        seconds, resources = time_render(nodes)
        print(f"{nodes:>6} {resources:>10} {seconds:>8.2f} {1000 * seconds / nodes:>8.1f}")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or list(DEFAULT_SIZES))
