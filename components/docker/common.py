"""Small pieces the Docker components share."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker

from escluster.units import MIB

# Public files readable by all; secrets only by the owner (root) and group root, which the
# Elastic images' users (uid 1000, gid 0) belong to.
PUBLIC_FILE_MODE = "0444"
SECRET_FILE_MODE = "0440"
STARTUP_TIMEOUT_SECONDS = 600
HEALTH_INTERVAL_SECONDS = 10


def remote_image(
    name: str, repository: str, version: str, opts: pulumi.ResourceOptions | None = None
) -> docker.RemoteImage:
    # keep_locally: `pulumi destroy` leaves the image in the engine's cache for the next `up`.
    return docker.RemoteImage(name, name=f"{repository}:{version}", keep_locally=True, opts=opts)


def public_file(path: str, content: pulumi.Input[str]) -> docker.ContainerUploadArgs:
    return docker.ContainerUploadArgs(file=path, content=content, permissions=PUBLIC_FILE_MODE)


def secret_file(path: str, content: pulumi.Input[str]) -> docker.ContainerUploadArgs:
    return docker.ContainerUploadArgs(file=path, content=pulumi.Output.secret(content), permissions=SECRET_FILE_MODE)


def megabytes(size_bytes: int) -> int:
    """pulumi-docker takes container memory in MB."""
    return size_bytes // MIB


def published_port(internal: int, external: int, bind_address: str) -> docker.ContainerPortArgs:
    return docker.ContainerPortArgs(internal=internal, external=external, ip=bind_address)


def attach_to(network_name: pulumi.Input[str], alias: str) -> docker.ContainerNetworksAdvancedArgs:
    return docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=[alias])


def named_child(parent: pulumi.Resource, **options: Any) -> pulumi.ResourceOptions:
    """Options of a child with a fixed Docker name: a replacement must delete the old object
    first, or Docker refuses the second object of the same name."""
    return pulumi.ResourceOptions(parent=parent, delete_before_replace=True, **options)


def health_gated(health_command: str, startup_seconds: int = STARTUP_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Container options of a long-running service: restarted with the engine, and `pulumi up`
    returns only once the health command passes (within `startup_seconds`)."""
    return {
        "healthcheck": docker.ContainerHealthcheckArgs(
            tests=["CMD-SHELL", health_command],
            interval=f"{HEALTH_INTERVAL_SECONDS}s",
            timeout=f"{HEALTH_INTERVAL_SECONDS}s",
            start_period="30s",
            retries=startup_seconds // HEALTH_INTERVAL_SECONDS,
        ),
        "restart": "unless-stopped",
        "wait": True,
        "wait_timeout": startup_seconds,
    }
