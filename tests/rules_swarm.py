"""docs/rules.md for a Swarm stack: one pinned, labelled, dnsrr service per ES node on an overlay network,
files from swarm configs and secrets, and the shared ES rules. The policy pack judges TLS, passwords and
heap (the "policy pack" entry of SWARM_RULES)."""

from __future__ import annotations

import base64
import re
from typing import Any

import yaml

from tests import rules
from tests.harness import Registration, Render
from tests.policy_pack import check_policy_pack

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
COMMAND = rules.COMMAND
CONSTRAINT = re.compile(r"^node\.labels\.([a-z0-9._-]+)==(\S+)$")


def container_spec(service: Registration) -> dict[str, Any]:
    spec: dict[str, Any] = service.inputs["taskSpec"]["containerSpec"]
    return spec


def files(render: Render, service: Registration) -> dict[str, tuple[str, Registration]]:
    """Path in the task → (content, the Secret or ServiceConfig that provides it)."""
    by_id = {r.id: r for r in render.of_type(SECRET) + render.of_type(CONFIG)}
    provided = {}
    spec = container_spec(service)
    for mount in spec.get("configs", []) + spec.get("secrets", []):
        source = by_id[mount.get("configId") or mount["secretId"]]
        provided[mount["fileName"]] = (base64.b64decode(source.inputs["data"]).decode(), source)
    return provided


def es_services(render: Render) -> list[Registration]:
    return [
        s
        for s in render.of_type(SERVICE)
        if container_spec(s)["image"].startswith(rules.ES_IMAGE) and rules.ES_CONFIG in files(render, s)
    ]


def es_settings(render: Render, service: Registration) -> dict[str, Any]:
    settings = yaml.safe_load(files(render, service)[rules.ES_CONFIG][0])
    assert isinstance(settings, dict)
    return settings


def applied_labels(render: Render) -> dict[tuple[str, str], list[tuple[str, Registration]]]:
    """(label key, value) → the swarm nodes a command labels with it, and the command."""
    labels: dict[tuple[str, str], list[tuple[str, Registration]]] = {}
    for command in render.of_type(COMMAND):
        argv = rules.docker_argv(str(command.inputs.get("create", "")))
        if argv[:3] == ["docker", "node", "update"] and "--label-add" in argv:
            key, _, value = argv[argv.index("--label-add") + 1].partition("=")
            labels.setdefault((key, value), []).append((argv[-1], command))
    return labels


def check_services_pinned_by_applied_labels(render: Render) -> None:
    labels = applied_labels(render)
    for (key, _), applied in labels.items():
        for node, command in applied:
            removal = str(command.inputs.get("delete", ""))
            assert f"--label-rm {key} {node}" in removal, f"{command.name}: label not removed on delete"
            assert command.delete_before_replace, f"{command.name}: a changed label would be removed after re-adding"
    for service in es_services(render):
        assert service.inputs["mode"]["replicated"]["replicas"] == 1, f"{service.name}: not one replica"
        constraints = service.inputs["taskSpec"].get("placement", {}).get("constraints", [])
        assert constraints, f"{service.name}: no placement constraint"
        targets: set[str] | None = None
        for constraint in constraints:
            match = CONSTRAINT.match(constraint)
            assert match, f"{service.name}: {constraint} is not a node.labels constraint"
            label = (match.group(1), match.group(2))
            assert label in labels, f"{service.name}: label {constraint} is applied by no command"
            for _, command in labels[label]:
                assert command.urn in service.dependencies, f"{service.name}: created before its label is applied"
            carriers = {node for node, _ in labels[label]}
            targets = carriers if targets is None else targets & carriers
        assert targets and len(targets) == 1, f"{service.name}: constraints do not pin one swarm node ({targets})"
    published: dict[tuple[str, int], str] = {}
    for service in es_services(render):
        node = next(iter(swarm_nodes_of(render, service)))
        for port in service.inputs["endpointSpec"].get("ports", []):
            where = (node, int(port["publishedPort"]))
            assert where not in published, f"{service.name} and {published[where]} publish one port on {node}"
            published[where] = service.name


def swarm_nodes_of(render: Render, service: Registration) -> set[str]:
    """The swarm nodes whose applied labels meet all of the service's constraints."""
    labels = applied_labels(render)
    nodes: set[str] | None = None
    for constraint in service.inputs["taskSpec"].get("placement", {}).get("constraints", []):
        match = CONSTRAINT.match(constraint)
        carriers = {node for node, _ in labels.get((match.group(1), match.group(2)), [])} if match else set()
        nodes = carriers if nodes is None else nodes & carriers
    return nodes or set()


def check_overlay_dnsrr_and_updates(render: Render) -> None:
    overlays = {n.id for n in render.of_type(rules.NETWORK) if n.inputs.get("driver") == "overlay"}
    for network in render.of_type(rules.NETWORK):
        if network.inputs.get("driver") == "overlay":
            assert network.inputs.get("attachable") is True, f"{network.name}: overlay not attachable"
    for service in es_services(render):
        assert service.inputs["endpointSpec"]["mode"] == "dnsrr", f"{service.name}: endpoint mode is not dnsrr"
        attached = {n.get("id") for n in service.inputs["taskSpec"].get("networksAdvanceds", [])}
        assert attached and attached <= overlays, f"{service.name}: not on an overlay network"
        update = service.inputs.get("updateConfig", {})
        assert update.get("order") == "stop-first", f"{service.name}: two copies of the node could run together"
        assert update.get("parallelism") == 1, f"{service.name}: updates more than one task at a time"
        assert service.inputs.get("convergeConfig"), f"{service.name}: `pulumi up` does not wait for convergence"
        mounts = container_spec(service).get("mounts", [])
        data = [m for m in mounts if m["target"] == rules.ES_DATA]
        assert data and data[0]["type"] == "volume" and data[0].get("source"), f"{service.name}: data not on a volume"


def check_files_and_secrets(render: Render) -> None:
    """Files named by *_FILE variables and TLS keys come from swarm secrets, which are Pulumi secrets; the
    TLS files the settings name are provided (no password in env and TLS on are the policy pack's)."""
    for service in render.of_type(SERVICE):
        env = container_spec(service).get("env", {})
        for name in env:
            if name.endswith("_FILE"):
                source = files(render, service).get(env[name])
                assert source and source[1].type == SECRET, f"{service.name}: {name} is not a swarm secret"
    for secret in render.of_type(SECRET):
        assert secret.input_is_secret("data"), f"{secret.name}: data is not a Pulumi secret"
    for service in es_services(render):
        s = es_settings(render, service)
        provided = files(render, service)
        for layer in ("http", "transport"):
            prefix = f"xpack.security.{layer}.ssl"
            for key in ("key", "certificate"):
                assert s[f"{prefix}.{key}"] in provided, f"{service.name}: {s[f'{prefix}.{key}']} not provided"
            assert provided[s[f"{prefix}.key"]][1].type == SECRET, f"{service.name}: key is not a swarm secret"


def check_memory_lock(render: Render) -> None:
    """No bootstrap.memory_lock: pulumi-docker cannot set a swarm service's memlock ulimit, and the bootstrap
    check would stop the node (memory limit and heap are the policy pack's elasticsearch-heap)."""
    for service in es_services(render):
        assert es_settings(render, service).get("bootstrap.memory_lock") is not True, (
            f"{service.name}: memory_lock on a swarm service, which cannot set the memlock ulimit"
        )


def check_discovery(render: Render) -> None:
    services = es_services(render)
    names = {s.name for s in services}
    settings = [es_settings(render, s) for s in services]
    rules.check_settings_discovery(settings, names)
    for s in settings:
        assert s.get("network.publish_host") == s["node.name"], f"{s['node.name']}: publish_host is not its service"


SWARM_RULES = {
    "policy pack": check_policy_pack,
    "services pinned by applied labels": check_services_pinned_by_applied_labels,
    "overlay, dnsrr, stop-first, volume": check_overlay_dnsrr_and_updates,
    "files from configs and secrets": check_files_and_secrets,
    "memory lock": check_memory_lock,
    "discovery and bootstrap": check_discovery,
    "no plain-text secrets": rules.check_no_plain_secrets,
    "deploy order": rules.check_deploy_order,
}
