"""What a resource runs, read from its inputs as the engine sends them (camelCase): containers with their
env, memory limit and files, and the Elasticsearch or Kibana settings files it carries.

Every value is read through `reading`, so a value a preview does not know yet is UNKNOWN (or left out,
where nothing can be said without it) and the rest is still judged."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from elastic_policy.reading import UNKNOWN, Unknown, elements, get_path, keys, read, text

# get_path is the offline review's too (review/diff.py).
__all__ = [
    "CONFIG_MAP",
    "CONTAINER",
    "HEAP_OPTIONS",
    "STATEFULSET",
    "SWARM_CONFIG",
    "SWARM_SERVICE",
    "Container",
    "Env",
    "containers",
    "elasticsearch_settings",
    "get_path",
    "heap_sizes",
    "kibana_settings",
    "quantity_bytes",
]

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
class Env:
    """An environment variable: a value written in the resource, or where the container reads it at start."""

    literal: str | Unknown | None  # the written value (UNKNOWN: a preview does not know it yet)
    source: str | Unknown | None = None  # else, what it is read from: secretKeyRef, configMapKeyRef, fieldRef...


@dataclass(frozen=True)
class Container:
    name: str
    env: Mapping[str, Env]  # variables whose name is known
    memory_limit: int | Unknown | None  # bytes
    files: tuple[str, ...]  # known paths the container is given: uploads, configs, secrets, mounts

    @property
    def runs_elasticsearch(self) -> bool:
        """An Elasticsearch node is what gets an elasticsearch.yml (a setup job or Kibana does not)."""
        return any(path.rsplit("/", 1)[-1] == ES_SETTINGS_FILE for path in self.files)


def _known_strings(values: list[Any]) -> tuple[str, ...]:
    return tuple(value for value in values if isinstance(value, str))


def _bytes(value: Any, unit: int) -> int | Unknown | None:
    if isinstance(value, Unknown):
        return value
    return int(float(value) * unit) if value else None


def containers(resource_type: str, props: Mapping[str, Any]) -> list[Container]:
    if resource_type == CONTAINER:
        env: dict[str, Env] = {}
        for entry in elements(read(props, "envs")):
            if isinstance(entry, str):  # NAME=value; an unknown entry has no name to judge
                name, _, value = entry.partition("=")
                env[name] = Env(value)
        files = _known_strings([read(upload, "file") for upload in elements(read(props, "uploads"))])
        return [Container(text(read(props, "name")), env, _bytes(read(props, "memory"), MIB), files)]
    if resource_type == SWARM_SERVICE:
        spec = get_path(props, "taskSpec", "containerSpec")
        mounted = [*elements(read(spec, "configs")), *elements(read(spec, "secrets"))]
        paths = [read(item, "fileName") for item in mounted]
        paths += [read(mount, "target") for mount in elements(read(spec, "mounts"))]
        variables = read(spec, "env")
        env = {name: Env(_literal(read(variables, name))) for name in keys(variables)}
        memory = _bytes(get_path(props, "taskSpec", "resources", "limits", "memoryBytes"), 1)
        return [Container(text(read(props, "name")), env, memory, _known_strings(paths))]
    if resource_type in POD_TEMPLATES:
        pod = get_path(props, *POD_TEMPLATES[resource_type])
        listed = [*elements(read(pod, "initContainers")), *elements(read(pod, "containers"))]
        return [_pod_container(c) for c in listed if c is not UNKNOWN]
    return []


def _literal(value: Any) -> str | Unknown:
    return value if isinstance(value, str | Unknown) else "" if value is None else str(value)


def _pod_container(container: Mapping[str, Any]) -> Container:
    env: dict[str, Env] = {}
    for entry in elements(read(container, "env")):
        name = read(entry, "name")
        if not isinstance(name, str):
            continue
        if "valueFrom" in keys(entry):
            reference = read(entry, "valueFrom")
            kinds = keys(reference)
            env[name] = Env(None, UNKNOWN if reference is UNKNOWN else kinds[0] if kinds else "")
        else:
            env[name] = Env(_literal(read(entry, "value")))
    limit = get_path(container, "resources", "limits", "memory")
    memory = UNKNOWN if limit is UNKNOWN else quantity_bytes(str(limit)) if limit else None
    mounts = [read(mount, "mountPath") for mount in elements(read(container, "volumeMounts"))]
    return Container(text(read(container, "name")), env, memory, _known_strings(mounts))


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
    """Texts of the settings files (`*.yml`) the resource carries and the preview knows: container uploads,
    swarm configs, ConfigMap entries. Only those values are read: a CA beside them may be unknown."""
    if resource_type == CONTAINER:
        for upload in elements(read(props, "uploads")):
            file = read(upload, "file")
            if isinstance(file, str) and file.endswith(".yml") and isinstance(content := read(upload, "content"), str):
                yield content
    elif resource_type == SWARM_CONFIG and isinstance(data := read(props, "data"), str):
        try:
            yield base64.b64decode(data, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return
    elif resource_type == CONFIG_MAP:
        data = read(props, "data")
        for key in keys(data):
            if key.endswith(".yml") and isinstance(value := read(data, key), str):
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
