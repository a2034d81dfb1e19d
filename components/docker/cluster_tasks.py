"""Scripts run against a Docker or Swarm cluster from the machine running `pulumi up`: each in a
throwaway container (`docker run --rm`) of the Elasticsearch image on the cluster's network (on a swarm,
the attachable overlay, on the manager), through the stack's engine: over `ssh` with the stack's ssh
options, or the local `docker` with DOCKER_HOST and TLS. Secrets come on standard input into a tmpfs
of the image's user, never in env, argv or a file on disk.

pulumi-command runs `create` again whenever an input changes, and a `create` that exits non-zero is not
saved in the state: the `up` fails with the script's message, and the next one runs it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from escluster.engines import Engine, engine_command, engine_environment

# The Elastic images' user; the tmpfs holding the secrets belongs to it alone.
IMAGE_USER = "1000:0"
TASK_DIR = "/run/setup"


@dataclass(frozen=True)
class ClusterTasks:
    engine: Engine
    ssh_opts: tuple[str, ...]
    cert_path: str | None
    network: str
    image: str
    es_urls: tuple[str, ...]

    def argv(self, script: str) -> list[str]:
        """`docker` arguments of a throwaway container running `script`."""
        return [
            "run",
            "--rm",
            "--interactive",
            "--pull",
            "missing",
            "--network",
            self.network,
            "--user",
            IMAGE_USER,
            "--tmpfs",
            f"{TASK_DIR}:rw,noexec,nosuid,size=1m,mode=0700,uid=1000,gid=0",
            "--entrypoint",
            "bash",
            self.image,
            "-c",
            script,
        ]

    def command(
        self,
        name: str,
        script: pulumi.Input[str],
        *,
        stdin: pulumi.Input[str],
        environment: Mapping[str, pulumi.Input[str]] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
        parent: pulumi.Resource,
    ) -> command.local.Command:
        """A Command that runs `script` in a task container; `environment` values only tell it when to run again."""
        create = pulumi.Output.from_input(script).apply(
            lambda text: engine_command(self.engine, self.argv(text), self.ssh_opts)
        )
        secret_stdin: pulumi.Output[str] = pulumi.Output.secret(stdin)
        return command.local.Command(
            name,
            create=create,
            environment={**engine_environment(self.engine, self.cert_path), **(environment or {})},
            stdin=secret_stdin,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )
