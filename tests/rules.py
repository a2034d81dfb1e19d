"""The rules of docs/rules.md that a rendered Docker stack must satisfy, as checks on a Render.

The rules the policy pack enforces (TLS on, no plain-text passwords, heap, ...) are judged by the pack
itself (tests/policy_pack.py, the "policy pack" entry of DOCKER_RULES); the checks here are the rules it
cannot see from one preview: whether a stack deploys and works (discovery, files provided, certificate
names, ports, data volumes, deploy order) and whether secrets stay Pulumi secrets in state and outputs.
Each check raises AssertionError naming the rule and the resource. tests/test_rules_catch.py breaks
renders on purpose to show every check fails when its rule is broken.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from review.diff import leaves
from tests.harness import Registration, Render
from tests.policy_pack import check_policy_pack

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
CERT_REQUEST = "tls:index/certRequest:CertRequest"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
ES_CONFIG = "/usr/share/elasticsearch/config/elasticsearch.yml"
KIBANA_CONFIG = "/usr/share/kibana/config/kibana.yml"
ES_DATA = "/usr/share/elasticsearch/data"
ES_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch"
KIBANA_IMAGE = "docker.elastic.co/kibana/kibana"
COMMAND = "command:local:Command"
# Resources whose creation waits for something to become ready: health-gated containers, converging
# services, awaited Kubernetes workloads, and commands that retry until a cluster answers.
WAITING_TYPES = {
    CONTAINER,
    "docker:index/service:Service",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:batch/v1:Job",
    "kubernetes:helm.sh/v3:Release",
}
# What a command that waits runs: a container of ours (the setup step), a retry loop, a rollout wait.
WAITING_COMMAND = re.compile(r"docker run|\buntil\b|\bwhile\b|rollout status")
# A new cluster: nodes, setup step and Kibana each wait for their own readiness only (MetalLB's installer,
# when the stack installs it, waits for its chart and webhook before the pools: not the cluster's chain).
MAX_WAIT_CHAIN = 1
METALLB_COMPONENT = "escluster:index:MetalLBPool"


# ---- reading a render ------------------------------------------------------------------------


def uploads(container: Registration) -> dict[str, str]:
    return {u["file"]: u.get("content", "") for u in container.inputs.get("uploads", [])}


def upload_index(container: Registration, path: str) -> int:
    for index, upload in enumerate(container.inputs.get("uploads", [])):
        if upload["file"] == path:
            return index
    raise AssertionError(f"{container.name}: nothing uploaded at {path}")


def image_of(render: Render, container: Registration) -> str:
    image_id = container.inputs["image"]
    for image in render.of_type("docker:index/remoteImage:RemoteImage"):
        if f"sha256:{image.inputs['name']}" == image_id:
            return str(image.inputs["name"])
    raise AssertionError(f"{container.name}: image {image_id} is not a RemoteImage of this stack")


def es_containers(render: Render) -> list[Registration]:
    return [
        c for c in render.of_type(CONTAINER) if image_of(render, c).startswith(ES_IMAGE) and ES_CONFIG in uploads(c)
    ]


def kibana_containers(render: Render) -> list[Registration]:
    return [c for c in render.of_type(CONTAINER) if image_of(render, c).startswith(KIBANA_IMAGE)]


def es_settings(container: Registration) -> dict[str, Any]:
    settings = yaml.safe_load(uploads(container)[ES_CONFIG])
    assert isinstance(settings, dict)
    return settings


def kibana_settings(container: Registration) -> dict[str, Any]:
    settings = yaml.safe_load(uploads(container)[KIBANA_CONFIG])
    assert isinstance(settings, dict)
    return settings


def published_ports(container: Registration) -> dict[int, int]:
    """Container port → host port."""
    return {int(p["internal"]): int(p["external"]) for p in container.inputs.get("ports", [])}


def env(container: Registration) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.inputs.get("envs", []))


def aliases(container: Registration) -> set[str]:
    return {a for n in container.inputs.get("networksAdvanced", []) for a in n.get("aliases", [])}


def strings_in(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    return ((p, text) for p, text in leaves(value, path) if isinstance(text, str))


# ---- discovery and bootstrap -----------------------------------------------------------------


def check_discovery_and_bootstrap(render: Render) -> None:
    nodes = es_containers(render)
    assert nodes, "no Elasticsearch container"
    addresses = {a for c in nodes for a in aliases(c)}
    check_settings_discovery([es_settings(c) for c in nodes], addresses)


def check_settings_discovery(all_settings: list[dict[str, Any]], addresses: set[str]) -> None:
    """The discovery and bootstrap rules over every node's settings; `addresses`: names nodes answer to."""
    assert all_settings, "no Elasticsearch node"
    names = [s.get("node.name") for s in all_settings]
    assert all(names), "a node has no node.name"
    assert len(set(names)) == len(names), f"node names are not unique: {names}"
    clusters = {s.get("cluster.name") for s in all_settings}
    assert len(clusters) == 1 and None not in clusters, f"nodes disagree on cluster.name: {clusters}"

    def roles(s: dict[str, Any]) -> list[str]:
        return list(s.get("node.roles", ["master"]))

    masters = [s["node.name"] for s in all_settings if "master" in roles(s)]
    electable = [s for s in all_settings if "master" in roles(s) and "voting_only" not in roles(s)]
    assert electable, "no master-eligible node that is not voting-only"
    # A seed is a node's name or alias, or across hosts `publish_host:transport.port`.
    reachable = (
        addresses
        | {str(n) for n in names}
        | {
            f"{s['network.publish_host']}:{s.get('transport.port', 9300)}"
            for s in all_settings
            if "network.publish_host" in s
        }
    )
    bootstrap_lists = set()
    for s in all_settings:
        name = s["node.name"]
        if s.get("discovery.type") == "single-node":
            assert len(all_settings) == 1, f"{name}: discovery.type single-node in a {len(all_settings)}-node cluster"
            assert "cluster.initial_master_nodes" not in s, f"{name}: single-node with cluster.initial_master_nodes"
            continue
        seeds = s.get("discovery.seed_hosts")
        assert seeds, f"{name}: multi-node cluster without discovery.seed_hosts"
        for seed in seeds:
            assert seed in reachable, f"{name}: seed host {seed} is not the address of any node"
        initial = s.get("cluster.initial_master_nodes")
        if initial is not None:
            assert "master" in roles(s), f"{name}: cluster.initial_master_nodes on a node that is not master-eligible"
            assert len(set(initial)) == len(initial), f"{name}: duplicate entries in {initial}"
            for entry in initial:
                assert entry in masters, f"{name}: initial master {entry} is not a master-eligible node.name"
            bootstrap_lists.add(tuple(initial))
    assert len(bootstrap_lists) <= 1, (
        f"master-eligible nodes disagree on cluster.initial_master_nodes: {bootstrap_lists}"
    )


# ---- security --------------------------------------------------------------------------------


def check_tls_files(render: Render) -> None:
    """The key, certificate and CA files the TLS settings name are uploaded, and the key as a secret
    (that TLS is on is the policy pack's elasticsearch-tls)."""
    for container in es_containers(render):
        s = es_settings(container)
        provided = uploads(container)
        for layer in ("http", "transport"):
            prefix = f"xpack.security.{layer}.ssl"
            for path in [
                s.get(f"{prefix}.key"),
                s.get(f"{prefix}.certificate"),
                *s.get(f"{prefix}.certificate_authorities", []),
            ]:
                assert path, f"{container.name}: {prefix} lacks a key, certificate or CA"
                assert path in provided, f"{container.name}: {path} is not provided to the container"
                assert provided[path], f"{container.name}: {path} is empty"
            key_index = upload_index(container, s[f"{prefix}.key"])
            assert container.input_is_secret(f"uploads[{key_index}].content"), (
                f"{container.name}: private key not secret"
            )


def check_certificate_sans(render: Render) -> None:
    requests = {r.inputs["subject"]["commonName"]: r for r in render.of_type(CERT_REQUEST)}
    for container in es_containers(render):
        name = es_settings(container)["node.name"]
        assert name in requests, f"{name}: no certificate request"
        request = requests[name].inputs
        dns, ips = set(request.get("dnsNames", [])), set(request.get("ipAddresses", []))
        assert {"localhost", name} <= dns, f"{name}: certificate lacks localhost or its name: {dns}"
        assert aliases(container) <= dns, f"{name}: certificate lacks a network alias: {aliases(container) - dns}"
        assert "127.0.0.1" in ips, f"{name}: certificate lacks 127.0.0.1"
        publish = es_settings(container).get("network.publish_host")
        if publish:
            assert publish in dns | ips, f"{name}: certificate lacks publish host {publish}"
        for port in container.inputs.get("ports", []):
            ip = port.get("ip", "0.0.0.0")
            if ip not in ("0.0.0.0", "::"):
                assert ip in ips, f"{name}: certificate lacks the published address {ip}"


def secret_values(render: Render) -> set[str]:
    """Values that must never appear in plain text: generated passwords and configured ones."""
    values = {f"generated-{r.name}" for r in render.of_type(RANDOM_PASSWORD)}
    return values | render.configured_secrets


def check_no_plain_secrets(render: Render) -> None:
    """No password the stack generates or is configured with appears outside a Pulumi secret, in any input
    or output (how the env and settings files hold passwords is the policy pack's no-plaintext-passwords)."""
    secrets = secret_values(render)
    assert secrets, "no password in this stack at all"
    for resource in render.resources:
        for path, text in strings_in(resource.inputs):
            if resource.input_is_secret(path):
                continue
            for secret in secrets:
                assert secret not in text, f"{resource.name}: {path} holds a password in plain text"
    for key, value in render.outputs.items():
        if key in render.secret_outputs:
            continue
        for path, text in strings_in(value, key):
            for secret in secrets:
                assert secret not in text, f"stack output {path} holds a password in plain text"
    assert "elastic_password" in render.secret_outputs, "elastic_password is not exported as a secret"


def check_kibana_pairing(render: Render) -> None:
    """Kibana signs in as kibana_system (Kibana 8+ refuses elastic), to nodes' HTTPS addresses, with the
    CA file it is given (https and a CA at all are the policy pack's elasticsearch-tls)."""
    kibanas = kibana_containers(render)
    assert kibanas, "no Kibana container"
    es_urls = {f"https://{es_settings(c)['node.name']}:9200" for c in es_containers(render)}
    for container in es_containers(render):
        publish_host = es_settings(container).get("network.publish_host")
        for port in container.inputs.get("ports", []):
            if publish_host and port["internal"] == 9200:
                es_urls.add(f"https://{publish_host}:{int(port['external'])}")
    for container in kibanas:
        settings = kibana_settings(container)
        assert settings.get("elasticsearch.username") == "kibana_system", f"{container.name}: not kibana_system"
        hosts = settings.get("elasticsearch.hosts", [])
        assert hosts, f"{container.name}: no elasticsearch.hosts"
        for host in hosts:
            assert host in es_urls, f"{container.name}: {host} is no node's HTTPS address"
        for ca in settings.get("elasticsearch.ssl.certificateAuthorities", []):
            assert uploads(container).get(ca), f"{container.name}: the CA file {ca} is not provided"


# ---- memory and OS ---------------------------------------------------------------------------


def check_memory_lock(render: Render) -> None:
    """bootstrap.memory_lock only with an unlimited memlock ulimit, or the bootstrap check stops the node
    (the memory limit and heap are the policy pack's elasticsearch-heap)."""
    for container in es_containers(render):
        locked = es_settings(container).get("bootstrap.memory_lock") is True
        memlock = [u for u in container.inputs.get("ulimits", []) if u["name"] == "memlock"]
        if locked:
            assert memlock and memlock[0]["soft"] == -1 and memlock[0]["hard"] == -1, (
                f"{container.name}: bootstrap.memory_lock without an unlimited memlock ulimit"
            )


# ---- data ------------------------------------------------------------------------------------


def check_persistent_data(render: Render) -> None:
    volumes = {v.inputs.get("name"): v for v in render.of_type(VOLUME)}
    for container in es_containers(render):
        mounts = [v for v in container.inputs.get("volumes", []) if v.get("containerPath") == ES_DATA]
        assert mounts, f"{container.name}: {ES_DATA} is not on a volume"
        volume = volumes.get(mounts[0].get("volumeName"))
        assert volume is not None, f"{container.name}: data volume is not a named volume of this stack"
        assert volume.protect or volume.retain_on_delete, f"{volume.name}: data volume is deleted with the stack"


# ---- docker ----------------------------------------------------------------------------------


def check_network_and_ports(render: Render, bind_address: str = "127.0.0.1") -> None:
    networks = {n.inputs.get("name") for n in render.of_type(NETWORK)}
    for container in es_containers(render) + kibana_containers(render):
        attached = [n["name"] for n in container.inputs.get("networksAdvanced", [])]
        assert attached and set(attached) <= networks, f"{container.name}: not on a user-defined network"
        assert container.inputs.get("networkMode") in (None, "bridge"), f"{container.name}: unexpected network mode"
        for port in container.inputs.get("ports", []):
            assert port.get("ip") == bind_address, f"{container.name}: port {port} not bound to {bind_address}"


def provider_hosts(render: Render) -> dict[str, str]:
    """Provider reference (urn::id) → its Docker engine URL."""
    return {
        f"{p.urn}::{p.id}": str(p.inputs.get("host")) for p in render.resources if p.type == "pulumi:providers:docker"
    }


def check_across_hosts(render: Render, address_of_engine: dict[str, str]) -> None:
    """Each node publishes its host's address, transport port and HTTP port on that host; its network
    lives on the same engine."""
    engines = provider_hosts(render)
    networks = {(n.provider, n.inputs.get("name")) for n in render.of_type(NETWORK)}
    for container in es_containers(render) + kibana_containers(render):
        assert container.provider in engines, f"{container.name}: not placed on a configured Docker host"
        address = address_of_engine[engines[container.provider]]
        for network in container.inputs.get("networksAdvanced", []):
            assert (container.provider, network["name"]) in networks, f"{container.name}: network on another engine"
        for port in container.inputs.get("ports", []):
            assert port.get("ip") in (address, "0.0.0.0"), f"{container.name}: port {port} not on host {address}"
    for container in es_containers(render):
        s = es_settings(container)
        address = address_of_engine[engines[container.provider]]
        assert s.get("network.publish_host") == address, f"{container.name}: publish_host is not {address}"
        published = published_ports(container)
        transport = int(s.get("transport.publish_port", s.get("transport.port", 9300)))
        assert published.get(int(s.get("transport.port", 9300))) == transport, (
            f"{container.name}: published transport port differs from transport.port / transport.publish_port"
        )
        assert 9200 in published, f"{container.name}: HTTP not published for the other hosts"


# ---- deploy order ----------------------------------------------------------------------------


def docker_argv(command: str) -> list[str]:
    """The `docker …` arguments a command runs, locally or through `ssh … -- host '<docker …>'`."""
    argv = shlex.split(command)
    if argv and argv[0] == "ssh":
        argv = shlex.split(argv[-1])
    return argv


def resource_waits(resource: Registration) -> bool:
    if resource.type == COMMAND:
        return bool(WAITING_COMMAND.search(str(resource.inputs.get("create", ""))))
    if resource.type == CONTAINER:
        return bool(resource.inputs.get("wait") or resource.inputs.get("attach"))
    return resource.type in WAITING_TYPES


def wait_chain_length(render: Render) -> int:
    """Length of the longest chain of waiting resources, each depending (maybe through others) on the last."""
    by_urn = render.by_urn()
    installer = {r.urn for r in render.resources if r.type == METALLB_COMPONENT}

    def is_waiting(resource: Registration) -> bool:
        return resource.parent not in installer and resource_waits(resource)

    def waiting_ancestors(urn: str, seen: frozenset[str] = frozenset()) -> set[str]:
        found: set[str] = set()
        for dep in by_urn[urn].dependencies:
            if dep in seen or dep not in by_urn:
                continue
            if is_waiting(by_urn[dep]):
                found.add(dep)
            else:
                found |= waiting_ancestors(dep, seen | {urn})
        return found

    memo: dict[str, int] = {}

    def depth(urn: str) -> int:
        if urn not in memo:
            memo[urn] = 1 + max((depth(d) for d in waiting_ancestors(urn)), default=0)
        return memo[urn]

    return max((depth(r.urn) for r in render.resources if is_waiting(r)), default=0)


def check_deploy_order(render: Render) -> None:
    es_urns = {c.urn for c in es_containers(render)}
    for container in es_containers(render):
        assert not set(container.dependencies) & es_urns, f"{container.name}: an ES node waits for another"
    length = wait_chain_length(render)
    assert length <= MAX_WAIT_CHAIN, f"the longest chain of waiting resources is {length} > {MAX_WAIT_CHAIN}"


def check_fixed_names_replace_safely(render: Render) -> None:
    """A Docker object with a fixed name must be deleted before its replacement is created."""
    for resource in render.of_type(CONTAINER) + render.of_type(VOLUME) + render.of_type(NETWORK):
        if resource.inputs.get("name"):
            assert resource.delete_before_replace, f"{resource.name}: fixed name without delete_before_replace"


DOCKER_RULES: dict[str, Callable[[Render], None]] = {
    "policy pack": check_policy_pack,
    "discovery and bootstrap": check_discovery_and_bootstrap,
    "TLS files provided": check_tls_files,
    "certificate SANs": check_certificate_sans,
    "no plain-text secrets": check_no_plain_secrets,
    "Kibana as kibana_system to the nodes": check_kibana_pairing,
    "memory lock": check_memory_lock,
    "persistent data": check_persistent_data,
    "deploy order": check_deploy_order,
    "fixed names replace safely": check_fixed_names_replace_safely,
}
