"""What a resource runs, read from its inputs as the engine sees them (camelCase): containers with
their env, memory limit and files, and the Elasticsearch or Kibana settings files it carries."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

CONTAINER = "docker:index/container:Container"
SWARM_SERVICE = "docker:index/service:Service"
SWARM_CONFIG = "docker:index/serviceConfig:ServiceConfig"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
# Kubernetes kinds with a pod template, and where it sits in their spec.
POD_TEMPLATES = {
    STATEFULSET: ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
ES_SETTINGS_FILE = "elasticsearch.yml"
HEAP_OPTIONS = "ES_JAVA_OPTS"
MIB = 1024**2


@dataclass(frozen=True)
class Container:
    name: str
    # A literal value, or None when it comes from a secret, file or field reference.
    env: Mapping[str, str | None]
    memory_limit: int | None  # bytes
    files: tuple[str, ...]  # paths the container is given: uploads, configs, secrets, mounts

    @property
    def runs_elasticsearch(self) -> bool:
        """An Elasticsearch node is what gets an elasticsearch.yml (a setup job or Kibana does not)."""
        return any(path.rsplit("/", 1)[-1] == ES_SETTINGS_FILE for path in self.files)


def get_path(value: Any, *path: str) -> Any:
    """The value at `path` in nested mappings, or None where a step is missing."""
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def containers(resource_type: str, props: Mapping[str, Any]) -> list[Container]:
    if resource_type == CONTAINER:
        env: dict[str, str | None] = {}
        for entry in props.get("envs") or []:
            name, _, value = str(entry).partition("=")
            env[name] = value
        memory = props.get("memory")
        files = tuple(str(upload.get("file", "")) for upload in props.get("uploads") or [])
        return [Container(str(props.get("name", "")), env, int(memory) * MIB if memory else None, files)]
    if resource_type == SWARM_SERVICE:
        spec = get_path(props, "taskSpec", "containerSpec") or {}
        memory = get_path(props, "taskSpec", "resources", "limits", "memoryBytes")
        mounted = [*(spec.get("configs") or []), *(spec.get("secrets") or [])]
        files = tuple(str(item.get("fileName", "")) for item in mounted)
        files += tuple(str(mount.get("target", "")) for mount in spec.get("mounts") or [])
        literal_env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
        return [Container(str(props.get("name", "")), literal_env, int(memory) if memory else None, files)]
    if resource_type in POD_TEMPLATES:
        pod = get_path(props, *POD_TEMPLATES[resource_type]) or {}
        return [_pod_container(c) for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]]
    return []


def _pod_container(container: Mapping[str, Any]) -> Container:
    env = {
        str(e.get("name")): (None if "valueFrom" in e else str(e.get("value", ""))) for e in container.get("env") or []
    }
    limit = get_path(container, "resources", "limits", "memory")
    files = tuple(str(mount.get("mountPath", "")) for mount in container.get("volumeMounts") or [])
    return Container(str(container.get("name", "")), env, quantity_bytes(str(limit)) if limit else None, files)


_QUANTITY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_QUANTITY_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_QUANTITY_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def quantity_bytes(quantity: str) -> int | None:
    """A Kubernetes memory quantity in bytes, or None when it is not one."""
    match = _QUANTITY.match(quantity.strip())
    return int(float(match.group(1)) * _QUANTITY_UNITS[match.group(2)]) if match else None


_JVM_SIZE = re.compile(r"-Xm([sx])([0-9]+)([kKmMgGtT]?)(?:\s|$)")
_JVM_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def heap_sizes(java_options: str) -> dict[str, int]:
    """{"s": Xms, "x": Xmx} in bytes, for the sizes the options set (the last one wins, as in the JVM)."""
    return {flag: int(size) * _JVM_UNITS[unit.lower()] for flag, size, unit in _JVM_SIZE.findall(java_options + " ")}


def settings_texts(resource_type: str, props: Mapping[str, Any]) -> Iterator[str]:
    """Texts of settings files the resource carries: container uploads, swarm configs, ConfigMap data."""
    if resource_type == CONTAINER:
        for upload in props.get("uploads") or []:
            if str(upload.get("file", "")).endswith(".yml") and isinstance(upload.get("content"), str):
                yield upload["content"]
    elif resource_type == SWARM_CONFIG and isinstance(props.get("data"), str):
        try:
            yield base64.b64decode(props["data"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return
    elif resource_type == CONFIG_MAP:
        for key, value in (props.get("data") or {}).items():
            if str(key).endswith(".yml") and isinstance(value, str):
                yield value


def flat_settings(text: str) -> dict[str, Any] | None:
    """A settings file as flat dotted keys (nested YAML flattened), or None when it is not a mapping."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(document, dict):
        return None
    flat: dict[str, Any] = {}

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = value

    walk(document, "")
    return flat


def elasticsearch_settings(resource_type: str, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in map(flat_settings, settings_texts(resource_type, props)) if s and "cluster.name" in s]


def kibana_settings(resource_type: str, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in map(flat_settings, settings_texts(resource_type, props)) if s and "elasticsearch.hosts" in s]
