"""RULES.md for a Swarm stack: one pinned, labelled, dnsrr service per ES node on an overlay network,
files from swarm configs and secrets, no password in env, and the shared ES rules."""

from __future__ import annotations

import base64
import re
from typing import Any

import yaml

from escluster.units import parse_size
from tests import rules
from tests.harness import Registration, Render

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
COMMAND = "command:local:Command"
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


def check_services_pinned_by_applied_labels(render: Render) -> None:
    labels = {
        (m.group(1), m.group(2)): c
        for c in render.of_type(COMMAND)
        if (m := re.search(r"--label-add '?([a-z0-9._-]+)=([^' ]+)'? ", c.inputs.get("create", "")))
    }
    nodes_of_label: dict[tuple[str, str], set[str]] = {}
    for command in labels.values():
        assert "--label-rm" in command.inputs.get("delete", ""), f"{command.name}: label not removed on delete"
        assert command.delete_before_replace, f"{command.name}: a changed label would be removed after re-adding"
    for label, command in labels.items():
        nodes_of_label.setdefault(label, set()).add(command.inputs["create"].rsplit(" ", 1)[-1])
    pinned_nodes: dict[str, str] = {}
    for service in es_services(render):
        assert service.inputs["mode"]["replicated"]["replicas"] == 1, f"{service.name}: not one replica"
        constraints = service.inputs["taskSpec"].get("placement", {}).get("constraints", [])
        assert constraints, f"{service.name}: no placement constraint"
        targets: set[str] | None = None
        for constraint in constraints:
            match = CONSTRAINT.match(constraint)
            assert match, f"{service.name}: {constraint} is not a node.labels constraint"
            label_command = labels.get((match.group(1), match.group(2)))
            assert label_command is not None, f"{service.name}: label {constraint} is applied by no command"
            assert label_command.urn in service.dependencies, f"{service.name}: created before its label is applied"
            carriers = nodes_of_label[match.group(1), match.group(2)]
            targets = carriers if targets is None else targets & carriers
        assert targets and len(targets) == 1, f"{service.name}: constraints do not pin one swarm node ({targets})"
        node = targets.pop()
        assert node not in pinned_nodes, f"{service.name} and {pinned_nodes[node]} share swarm node {node}"
        pinned_nodes[node] = service.name


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
    for service in render.of_type(SERVICE):
        env = container_spec(service).get("env", {})
        for name in env:
            assert not (rules.SECRET_ENV_NAME.search(name) and not name.endswith("_FILE")), (
                f"{service.name}: secret-looking env {name}"
            )
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
            assert s.get(f"{prefix}.enabled") is True, f"{service.name}: {layer} TLS off"
            for key in ("key", "certificate"):
                assert s[f"{prefix}.{key}"] in provided, f"{service.name}: {s[f'{prefix}.{key}']} not provided"
            assert provided[s[f"{prefix}.key"]][1].type == SECRET, f"{service.name}: key is not a swarm secret"


def check_memory(render: Render) -> None:
    for service in es_services(render):
        limit = service.inputs["taskSpec"].get("resources", {}).get("limits", {}).get("memoryBytes")
        assert limit, f"{service.name}: no memory limit"
        options = container_spec(service).get("env", {}).get("ES_JAVA_OPTS", "")
        sizes = re.findall(r"-Xm[sx](\S+)", options)
        assert len(sizes) == 2 and sizes[0] == sizes[1], f"{service.name}: heap not fixed ({options})"
        assert parse_size(sizes[0]) * 2 <= limit, f"{service.name}: heap above 50% of the limit"
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
    "services pinned by applied labels": check_services_pinned_by_applied_labels,
    "overlay, dnsrr, stop-first, volume": check_overlay_dnsrr_and_updates,
    "files from configs and secrets": check_files_and_secrets,
    "memory": check_memory,
    "discovery and bootstrap": check_discovery,
    "no plain-text secrets": rules.check_no_plain_secrets,
    "deploy order": rules.check_deploy_order,
}
