"""SetupJob (Docker and Swarm): the one-shot step that sets the `elastic` and `kibana_system` passwords.

It runs from the machine running `pulumi up`, as a throwaway container (`docker run --rm`) of the
Elasticsearch image on the cluster's own network (on a swarm, the attachable overlay), through the same
engine the stack deploys to. The secrets reach it on standard input and live in a tmpfs, never in env,
argv or a file on disk.

pulumi-command runs `create` again whenever an input changes (a rotated password, a new CA, other
nodes), and a `create` that exits non-zero is not saved in the state, so the next `up` runs it again:
a failure never wedges the stack. The script retries until the cluster answers, and on giving up says
what to do.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_command as command

from components import component_type
from escluster.engines import Engine, engine_command, engine_environment
from escluster.scripts import CLUSTER_UUID_PREFIX, SetupFiles, read_setup_stdin, setup_script, setup_stdin

# The Elastic images' user; the tmpfs holding the secrets belongs to it alone.
IMAGE_USER = "1000:0"
SETUP_FILES = SetupFiles("/run/setup")


def setup_container_argv(network: str, image: str, es_urls: Sequence[str], logs_hint: str) -> list[str]:
    """`docker` arguments of the throwaway setup container."""
    script = read_setup_stdin(SETUP_FILES) + setup_script(es_urls, SETUP_FILES, logs_hint)
    return [
        "run",
        "--rm",
        "--interactive",
        "--pull",
        "missing",
        "--network",
        network,
        "--user",
        IMAGE_USER,
        "--tmpfs",
        f"{SETUP_FILES.directory}:rw,noexec,nosuid,size=1m,mode=0700,uid=1000,gid=0",
        "--entrypoint",
        "bash",
        image,
        "-c",
        script,
    ]


def cluster_uuid(stdout: str) -> str:
    """The UUID the setup step printed, or "" if it printed none."""
    for line in stdout.splitlines():
        if line.startswith(CLUSTER_UUID_PREFIX):
            return line.removeprefix(CLUSTER_UUID_PREFIX).strip()
    return ""


class SetupJob(pulumi.ComponentResource):
    command: command.local.Command
    cluster_uuid: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        engine: Engine,
        ssh_opts: Sequence[str],
        cert_path: str | None,
        network: str,
        image: str,
        es_urls: Sequence[str],
        logs_hint: str,
        admin_password: pulumi.Input[str],
        elastic_password: pulumi.Input[str],
        kibana_system_password: pulumi.Input[str],
        ca_cert_pem: pulumi.Input[str],
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(component_type("SetupJob"), name, None, opts)
        stdin: pulumi.Output[str] = pulumi.Output.all(
            admin_password, elastic_password, kibana_system_password, ca_cert_pem
        ).apply(lambda values: setup_stdin(values[0], values[1], values[2], values[3]))
        secret_stdin: pulumi.Output[str] = pulumi.Output.secret(stdin)
        self.command = command.local.Command(
            name,
            create=engine_command(engine, setup_container_argv(network, image, es_urls, logs_hint), tuple(ssh_opts)),
            environment=engine_environment(engine, cert_path),
            stdin=secret_stdin,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        self.cluster_uuid = self.command.stdout.apply(cluster_uuid)
        self.register_outputs({"cluster_uuid": self.cluster_uuid})
