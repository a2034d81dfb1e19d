"""Every Elasticsearch and Kibana process of a render, whatever the target: the user it runs as, its
environment, its command, and the files it gets, with their owners and modes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tests import rules
from tests.contracts.conditions import (
    ELASTICSEARCH_USER,
    KIBANA_USER,
    ProcessUser,
    ProvidedFile,
    docker_files,
    k8s_files,
    k8s_pod_spec,
    k8s_user,
    swarm_files,
)
from tests.harness import Registration, Render, stacks_in_repo

SERVICE = "docker:index/service:Service"
POD_WORKLOADS = ("kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")
ELASTICSEARCH = "elasticsearch"
KIBANA = "kibana"


@dataclass(frozen=True)
class Process:
    """One container's process: `image` is ELASTICSEARCH or KIBANA; `role` the container's job
    ("node", "kibana", "setup", "sysctl")."""

    resource: Registration
    container: str
    image: str
    role: str
    user: ProcessUser
    env: Mapping[str, str | None]
    command: list[str]
    files: dict[str, ProvidedFile]

    @property
    def name(self) -> str:
        return f"{self.resource.name}/{self.container}"


def _image(reference: str) -> str | None:
    if rules.ES_IMAGE in reference:
        return ELASTICSEARCH
    if rules.KIBANA_IMAGE in reference:
        return KIBANA
    return None


def _default_user(image: str) -> ProcessUser:
    return ELASTICSEARCH_USER if image == ELASTICSEARCH else KIBANA_USER


def _role(image: str, files: dict[str, ProvidedFile], command: list[str]) -> str:
    if image == KIBANA:
        return "kibana"
    if rules.ES_CONFIG in files:
        return "node"
    if any("sysctl" in part for part in command):
        return "sysctl"
    return "setup"


def processes(render: Render) -> Iterator[Process]:
    for container in render.of_type(rules.CONTAINER):
        image = _image(rules.image_of(render, container))
        if image is None:
            continue
        files = docker_files(container)
        command = list(container.inputs.get("commands", container.inputs.get("command", [])))
        yield Process(
            container,
            "main",
            image,
            _role(image, files, command),
            _default_user(image),
            rules.env(container),
            command,
            files,
        )
    for service in render.of_type(SERVICE):
        spec = service.inputs["taskSpec"]["containerSpec"]
        image = _image(spec["image"])
        if image is None:
            continue
        files = swarm_files(render, service)
        command = list(spec.get("commands", [])) + list(spec.get("args", []))
        env = {k: str(v) for k, v in spec.get("env", {}).items()}
        yield Process(service, "main", image, _role(image, files, command), _default_user(image), env, command, files)
    for workload in (r for t in POD_WORKLOADS for r in render.of_type(t)):
        pod = k8s_pod_spec(workload)
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            image = _image(container["image"])
            if image is None:
                continue
            files = k8s_files(render, workload, container)
            command = list(container.get("command", [])) + list(container.get("args", []))
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            user = k8s_user(workload, container, _default_user(image))
            yield Process(workload, container["name"], image, _role(image, files, command), user, env, command, files)


ALL_STACKS = stacks_in_repo()
