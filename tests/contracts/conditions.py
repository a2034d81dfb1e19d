"""The conditions the engines give a workload at run time, read from a render: which user runs it, and
each file it gets with the owner and mode the engine gives that file.

- The images' users (elastic/dockerfiles, 8.19 and 9.2 generated from elastic/elasticsearch
  `distribution/docker/src/docker/Dockerfile.default` and elastic/kibana `docker_generator`):
  Elasticsearch `USER 1000:0`, its user in group 0; Kibana `USER 1000` (primary group 1000), in group 0.
- Docker `uploads`: kreuzwerker/terraform-provider-docker `resource_docker_container_funcs.go` writes a
  tar header with only name, mode and size, and copies without CopyUIDGID: the file is root:root with
  the given mode.
- Swarm configs and secrets: moby/moby `daemon/container_operations_unix.go` (setupSecretDir, and
  configs alike) chowns each file to its reference's `File.UID`/`File.GID` and chmods it to `File.Mode`.
- Kubernetes secret and configMap volumes: the kubelet writes each file root-owned with the item's
  mode, or the volume's `defaultMode` (0644 when unset), and group `fsGroup` when the pod sets one
  (kubernetes/kubernetes `pkg/volume/util/atomic_writer.go`, `pkg/volume/volume_linux.go` SetVolumeOwnership);
  the container's user is `runAsUser`/`runAsGroup` (else the image's), with the image's groups and `fsGroup`.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import Registration, Render

DEFAULT_VOLUME_MODE = 0o644
DEFAULT_CONFIG_MODE = 0o444


@dataclass(frozen=True)
class ProcessUser:
    uid: int
    gid: int
    groups: frozenset[int]

    def can_read(self, file: ProvidedFile) -> bool:
        if self.uid == 0:
            return True
        if file.uid == self.uid:
            return bool(file.mode & 0o400)
        if file.gid == self.gid or file.gid in self.groups:
            return bool(file.mode & 0o040)
        return bool(file.mode & 0o004)


ELASTICSEARCH_USER = ProcessUser(1000, 0, frozenset({0}))
KIBANA_USER = ProcessUser(1000, 1000, frozenset({0}))


@dataclass(frozen=True)
class ProvidedFile:
    path: str
    content: str
    uid: int
    gid: int
    mode: int


def docker_files(container: Registration) -> dict[str, ProvidedFile]:
    """A container's uploads, as the engine lays them down (root:root, the given mode)."""
    files = {}
    for upload in container.inputs.get("uploads", []):
        mode = int(upload["permissions"], 8) if upload.get("permissions") else DEFAULT_VOLUME_MODE
        files[upload["file"]] = ProvidedFile(upload["file"], upload.get("content", ""), 0, 0, mode)
    return files


def swarm_files(render: Render, service: Registration) -> dict[str, ProvidedFile]:
    """A service's configs and secrets, with their references' owner and mode."""
    by_id = {
        r.id: r
        for r in render.resources
        if r.type in ("docker:index/secret:Secret", "docker:index/serviceConfig:ServiceConfig")
    }
    spec = service.inputs["taskSpec"]["containerSpec"]
    files = {}
    for reference in spec.get("configs", []) + spec.get("secrets", []):
        source = by_id[reference.get("configId") or reference["secretId"]]
        content = base64.b64decode(source.inputs["data"]).decode()
        files[reference["fileName"]] = ProvidedFile(
            reference["fileName"],
            content,
            int(reference.get("fileUid", "0")),
            int(reference.get("fileGid", "0")),
            int(reference.get("fileMode", DEFAULT_CONFIG_MODE)),
        )
    return files


def k8s_object_name(resource: Registration) -> str:
    return str(resource.outputs["metadata"]["name"])


def _volume_source(
    render: Render, volume: Mapping[str, Any]
) -> tuple[dict[str, str], int, list[dict[str, Any]] | None]:
    if "secret" in volume:
        source = volume["secret"]
        objects = {k8s_object_name(r): r for r in render.of_type("kubernetes:core/v1:Secret")}
        data = dict(objects[source["secretName"]].inputs.get("stringData", {}))
    else:
        source = volume["configMap"]
        objects = {k8s_object_name(r): r for r in render.of_type("kubernetes:core/v1:ConfigMap")}
        data = dict(objects[source["name"]].inputs.get("data", {}))
    return data, int(source.get("defaultMode", DEFAULT_VOLUME_MODE)), source.get("items")


def k8s_pod_spec(workload: Registration) -> dict[str, Any]:
    spec: dict[str, Any] = workload.inputs["spec"]["template"]["spec"]
    return spec


def k8s_user(workload: Registration, container: Mapping[str, Any], image_user: ProcessUser) -> ProcessUser:
    pod = k8s_pod_spec(workload).get("securityContext", {})
    own = container.get("securityContext", {})
    uid = own.get("runAsUser", pod.get("runAsUser", image_user.uid))
    gid = own.get("runAsGroup", pod.get("runAsGroup", image_user.gid))
    # Numbers reach the mocks as floats (protobuf's JSON form).
    groups = set(image_user.groups) | {int(g) for g in pod.get("supplementalGroups", [])}
    if "fsGroup" in pod:
        groups.add(int(pod["fsGroup"]))
    return ProcessUser(int(uid), int(gid), frozenset(groups))


def k8s_files(render: Render, workload: Registration, container: Mapping[str, Any]) -> dict[str, ProvidedFile]:
    """The files a pod's container sees from its secret and configMap volumes."""
    pod = k8s_pod_spec(workload)
    group = int(pod.get("securityContext", {}).get("fsGroup", 0))
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})  # absent: a volume claim template
        if "secret" not in volume and "configMap" not in volume:
            continue
        data, default_mode, items = _volume_source(render, volume)
        entries = (
            {i["path"]: (i["key"], int(i.get("mode", default_mode))) for i in items}
            if items
            else {key: (key, default_mode) for key in data}
        )
        for relative, (key, mode) in entries.items():
            if "subPath" in mount:
                if mount["subPath"] != relative:
                    continue
                path = mount["mountPath"]
            else:
                path = f"{mount['mountPath']}/{relative}"
            files[path] = ProvidedFile(path, data[key], 0, group, mode)
    return files


# ---- executing a script under those conditions ----------------------------------------------------


def materialize(
    files: Sequence[ProvidedFile], root: Path, relocate: Callable[[str], str] = lambda p: p
) -> dict[str, Path]:
    """Write each file under `root` (at `relocate(path)`), owned and moded as the engine gives it."""
    written = {}
    for file in files:
        target = root / relocate(file.path).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        for parent in [target.parent, *target.parent.parents]:
            if parent == root.parent:
                break
            parent.chmod(0o755)
        target.write_text(file.content)
        os.chown(target, file.uid, file.gid)
        target.chmod(file.mode)
        written[file.path] = target
    return written


def run_as(
    user: ProcessUser,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: str = "",
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` as the image's user (uid, gid and groups), as the engine starts the container's process."""
    assert os.geteuid() == 0, "running a script as the image's user needs root (CI runs the tests as root)"

    def drop() -> None:
        os.setgroups(sorted(user.groups))
        os.setgid(user.gid)
        os.setuid(user.uid)

    return subprocess.run(
        list(argv),
        env=dict(env),
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        preexec_fn=drop,
    )
