"""Docker Swarm config and placement: which swarm node each ES node is pinned to, by which labels.

Pure Python. The program applies the labels itself (see components/swarm/stack.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field, field_validator, model_validator

from escluster.engines import EngineUrl
from escluster.fields import Strict

LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def parse_selector(text: str) -> tuple[str, str] | None:
    """`server=a` as (key, value); None for anything else."""
    key, sep, value = text.partition("=")
    if sep and LABEL_KEY.match(key) and LABEL_VALUE.match(value):
        return key, value
    return None


class SwarmNode(Strict):
    node: str = Field(description="Swarm node hostname or ID, as `docker node ls` shows it.")
    labels: dict[str, str] = Field(description="Labels the program puts on the node, such as `{server: a}`.")

    @field_validator("node")
    @classmethod
    def _node(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", value):
            raise ValueError(f"{value!r} is not a swarm node hostname or ID")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("a swarm node needs at least one label to pin ES nodes to it")
        for key, label in value.items():
            if not LABEL_KEY.match(key) or not LABEL_VALUE.match(label):
                raise ValueError(f"{key}={label} is not a label (lower-case key; letters, digits, '.', '_', '-')")
        return value


class Swarm(Strict):
    manager: EngineUrl = Field(description="Docker engine of a swarm manager: `ssh://user@host` or `tcp://host:2376`.")
    cert_path: str | None = Field(None, description="TLS material directory for a `tcp://` manager.")
    ssh_opts: list[str] = Field(default_factory=list, description="Extra ssh options for an `ssh://` manager.")
    nodes: list[SwarmNode] = Field(min_length=1, description="Swarm nodes that run ES, with their labels.")
    managers: int | None = Field(None, ge=1, description="Number of swarm managers, to warn about an even count.")

    @model_validator(mode="after")
    def _check(self) -> Swarm:
        if self.manager.startswith("tcp://") and not self.cert_path:
            raise ValueError("cert_path: a tcp:// manager needs TLS material (an open engine port is root on the host)")
        return self


@dataclass(frozen=True)
class SwarmPlacement:
    node: str  # the swarm node hostname or ID
    constraints: tuple[str, ...]  # `node.labels.<key>==<value>`


def resolve(
    node_names: Sequence[tuple[str, int, int]], placements: Sequence[Sequence[str]], swarm: Swarm
) -> dict[str, SwarmPlacement]:
    """Pin every ES node (name, group index, index in group) to exactly one swarm node.

    A group's placement lists label selectors (`server=a`) used in turn; without one, the group's
    nodes take the swarm nodes in turn, pinned by all of that node's labels. Several ES nodes may share a
    swarm node (dedicated masters beside data nodes); each publishes its own HTTPS port there.
    """
    pinned: dict[str, SwarmPlacement] = {}
    for name, group_index, index in node_names:
        selectors = placements[group_index]
        key = f"cluster.node_groups[{group_index}].placement"
        if selectors:
            position = index % len(selectors)
            selector = parse_selector(selectors[position])
            if selector is None:
                raise ValueError(f"{key}[{position}]: {selectors[position]!r} is not a label selector such as server=a")
            carriers = [n for n in swarm.nodes if n.labels.get(selector[0]) == selector[1]]
            if not carriers:
                raise ValueError(f"{key}[{position}]: no swarm node carries the label {selectors[position]}")
            if len(carriers) > 1:
                raise ValueError(
                    f"{key}[{position}]: {len(carriers)} swarm nodes carry {selectors[position]}; "
                    "a label must pin an ES node to one swarm node"
                )
            target, labels = carriers[0], dict([selector])
        else:
            target = swarm.nodes[index % len(swarm.nodes)]
            labels = target.labels
        constraints = tuple(f"node.labels.{k}=={v}" for k, v in sorted(labels.items()))
        pinned[name] = SwarmPlacement(target.node, constraints)
    return pinned


def warnings(swarm: Swarm) -> list[str]:
    if swarm.managers is not None and swarm.managers % 2 == 0:
        return [
            f"swarm.managers: {swarm.managers} managers tolerate no more failures than {swarm.managers - 1}; "
            "Raft wants an odd number"
        ]
    return []
