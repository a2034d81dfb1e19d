"""The config of each end-to-end leg (keys without the project prefix): the e2e's own names and ports, so
a leg runs beside a user's real stacks on the same engine. tests/test_e2e_legs.py renders each under the
mocks, so a leg's config is known to be valid before any engine sees it."""

from __future__ import annotations

from typing import Any

from tests.e2e.deploy import stack_config

DEV_CLUSTER = "e2e-dev"
SWARM_CLUSTER = "e2e-swarm"
KIND_CLUSTER = "escluster-e2e"
ES_ROLES = ["master", "data", "ingest"]


def dev(heap: str | None = None) -> dict[str, Any]:
    """`dev` as the repository has it, renamed, on ports of its own; `heap`: the change of the leg."""
    config = stack_config("dev")
    group = {**config["cluster"]["node_groups"][0], **({"heap": heap} if heap else {})}
    config["cluster"] = {**config["cluster"], "name": DEV_CLUSTER, "node_groups": [group]}
    config["exposure"] = {**config["exposure"], "http_port": 19200}
    config["kibana"] = {**config["kibana"], "port": 15601}
    return config


def swarm(node: str) -> dict[str, Any]:
    """`staging` reduced to one node of a one-node swarm on the local engine."""
    return {
        "target": "swarm",
        "swarm": {"manager": "unix:///var/run/docker.sock", "nodes": [{"node": node, "labels": {"e2e": "one"}}]},
        "cluster": {
            "name": SWARM_CLUSTER,
            "node_groups": [{"name": "es", "count": 1, "roles": ES_ROLES, "memory": "2g", "placement": ["e2e=one"]}],
        },
        "kibana": {"replicas": 1, "memory": "1g", "port": 25601},
        "exposure": {"http_port": 29200},
    }


def kind(context: str, addresses: str, es_ip: str, kibana_ip: str) -> dict[str, Any]:
    """`prod` on a kind cluster: one node, kind's StorageClass, MetalLB installed by the program."""
    return {
        "target": "kubernetes",
        "kubernetes": {
            "namespace": "e2e",
            "context": context,
            "storage_class": "standard",
            "metallb": {"install": True, "pools": [{"name": "e2e", "addresses": [addresses]}]},
            "load_balancer": {"pool": "e2e", "elasticsearch_ip": es_ip, "kibana_ip": kibana_ip},
        },
        "cluster": {
            "name": "e2e-k8s",
            "node_groups": [{"name": "es", "count": 1, "roles": ES_ROLES, "memory": "2g", "storage": "2Gi"}],
        },
        "kibana": {"replicas": 1, "memory": "1g"},
    }
