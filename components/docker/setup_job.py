"""SetupJob (Docker and Swarm): the one-shot step that sets the `elastic` and `kibana_system` passwords,
as a cluster task (components/docker/cluster_tasks.py): it runs again whenever a password, the CA or the nodes
change, and a failure never wedges the stack. The script retries until the cluster answers, and on
giving up says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_command as command

from components import component_type
from components.docker.cluster_tasks import TASK_DIR, ClusterTasks
from escluster.scripts import CLUSTER_UUID_PREFIX, SetupFiles, read_setup_stdin, setup_script, setup_stdin

SETUP_FILES = SetupFiles(TASK_DIR)


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
        tasks: ClusterTasks,
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
        script = read_setup_stdin(SETUP_FILES) + setup_script(tasks.es_urls, SETUP_FILES, logs_hint)
        self.command = tasks.command(name, script, stdin=stdin, depends_on=depends_on, parent=self)
        self.cluster_uuid = self.command.stdout.apply(cluster_uuid)
        self.register_outputs({"cluster_uuid": self.cluster_uuid})
