"""Swarm objects the SwarmStack builds services from: configs, secrets, label commands."""

from __future__ import annotations

import base64
import shlex

import pulumi
import pulumi_command as command
import pulumi_docker as docker

# The Elastic images run as uid 1000, gid 0.
IMAGE_UID = "1000"
IMAGE_GID = "0"
PUBLIC_MODE = 0o444
SECRET_MODE = 0o440


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def config_file(
    name: str, path: str, content: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> docker.ServiceTaskSpecContainerSpecConfigArgs:
    """A public file as a swarm config. No fixed name: a changed file is a new config, made before the old goes."""
    config = docker.ServiceConfig(name, data=pulumi.Output.from_input(content).apply(_base64), opts=opts)
    return docker.ServiceTaskSpecContainerSpecConfigArgs(
        config_id=config.id,
        file_name=path,
        file_uid=IMAGE_UID,
        file_gid=IMAGE_GID,
        file_mode=PUBLIC_MODE,
    )


def secret_file(
    name: str, path: str, content: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> docker.ServiceTaskSpecContainerSpecSecretArgs:
    """A secret file as a swarm secret: encrypted in the swarm's Raft log, mounted in memory."""
    secret = docker.Secret(name, data=pulumi.Output.secret(content).apply(_base64), opts=opts)
    return docker.ServiceTaskSpecContainerSpecSecretArgs(
        secret_id=secret.id,
        file_name=path,
        file_uid=IMAGE_UID,
        file_gid=IMAGE_GID,
        file_mode=SECRET_MODE,
    )


def engine_environment(manager: str, cert_path: str | None) -> dict[str, str]:
    """What the docker CLI needs to talk to the swarm manager."""
    environment = {"DOCKER_HOST": manager}
    if cert_path:
        environment |= {"DOCKER_CERT_PATH": cert_path, "DOCKER_TLS_VERIFY": "1"}
    return environment


def node_label(
    name: str, *, swarm_node: str, key: str, value: str, environment: dict[str, str], parent: pulumi.Resource
) -> command.local.Command:
    """Put one label on a swarm node; take it off on delete. Replaced (delete first) when the value changes."""
    node = shlex.quote(swarm_node)
    return command.local.Command(
        name,
        create=f"docker node update --label-add {shlex.quote(f'{key}={value}')} {node}",
        delete=f"docker node update --label-rm {shlex.quote(key)} {node}",
        environment=environment,
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
    )
