"""Swarm objects the SwarmStack builds services from: configs, secrets, label commands.

moby/swarmkit `manager/controlapi/service.go` (validateConfigRefsSpec, validateSecretRefsSpec) refuses a
reference that lacks the object's name or id, and `common.go` (validateConfigOrSecretAnnotations) a
config or secret name over 64 characters or outside `[a-zA-Z0-9-_.]`. pulumi-docker auto-names them
`<resource name>-<7 hex>`, so a resource name here stays within 56 characters.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from escluster.engines import Engine, engine_command, engine_environment

# The Elastic images run as uid 1000 (gid 0 for Elasticsearch; Kibana's user is in group 0 too).
IMAGE_UID = "1000"
IMAGE_GID = "0"
PUBLIC_MODE = 0o444
SECRET_MODE = 0o440
MAX_SWARM_OBJECT_NAME = 64
# pulumi-docker's auto-name adds "-" and 7 hexadecimal characters.
AUTONAME_SUFFIX = 8
SWARM_OBJECT_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")


def object_name(*parts: str) -> str:
    """A resource name whose auto-name fits swarmkit's 64 characters: long names keep their start and a digest."""
    name = "-".join(parts)
    room = MAX_SWARM_OBJECT_NAME - AUTONAME_SUFFIX
    if len(name) <= room:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: room - len(digest) - 1].rstrip('-_.')}-{digest}"


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def config_file(
    name: str, path: str, content: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> docker.ServiceTaskSpecContainerSpecConfigArgs:
    """A public file as a swarm config. Auto-named: a changed file is a new config, made before the old goes."""
    config = docker.ServiceConfig(object_name(name), data=pulumi.Output.from_input(content).apply(_base64), opts=opts)
    return docker.ServiceTaskSpecContainerSpecConfigArgs(
        config_id=config.id,
        config_name=config.name,
        file_name=path,
        file_uid=IMAGE_UID,
        file_gid=IMAGE_GID,
        file_mode=PUBLIC_MODE,
    )


def secret_file(
    name: str, path: str, content: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> docker.ServiceTaskSpecContainerSpecSecretArgs:
    """A secret file as a swarm secret: encrypted in the swarm's Raft log, mounted in memory."""
    secret = docker.Secret(object_name(name), data=pulumi.Output.secret(content).apply(_base64), opts=opts)
    return docker.ServiceTaskSpecContainerSpecSecretArgs(
        secret_id=secret.id,
        secret_name=secret.name,
        file_name=path,
        file_uid=IMAGE_UID,
        file_gid=IMAGE_GID,
        file_mode=SECRET_MODE,
    )


def node_label(
    name: str,
    *,
    manager: Engine,
    ssh_opts: tuple[str, ...],
    cert_path: str | None,
    swarm_node: str,
    key: str,
    value: str,
    parent: pulumi.Resource,
) -> command.local.Command:
    """Put one label on a swarm node through the manager; take it off on delete (if it is still there:
    `docker node update --label-rm` fails on an absent label). Replaced (delete first) when it changes."""
    add = engine_command(manager, ["node", "update", "--label-add", f"{key}={value}", swarm_node], ssh_opts)
    inspect = engine_command(manager, ["node", "inspect", "--format", "{{json .Spec.Labels}}", swarm_node], ssh_opts)
    remove = engine_command(manager, ["node", "update", "--label-rm", key, swarm_node], ssh_opts)
    present = shlex.quote(f'"{key}":')
    # A manager that cannot be asked fails the delete, rather than leaving the label behind unseen; a node
    # that has left the swarm has no label to remove.
    delete = (
        f"if ! labels=$({inspect} 2>&1); then\n"
        '  case "$labels" in *"No such node"*) exit 0 ;; esac\n'
        '  echo "$labels" >&2\n'
        "  exit 1\n"
        "fi\n"
        f'case "$labels" in *{present}*) {remove} ;; esac\n'
    )
    return command.local.Command(
        name,
        create=add,
        delete=delete,
        environment=engine_environment(manager, cert_path),
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
    )
