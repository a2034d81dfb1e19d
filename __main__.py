"""Elasticsearch + Kibana, one stack per environment: read the stack config and what the last `up` left,
refuse unsafe changes, plan, deploy, export."""

import pulumi

from components.credentials import StackCredentials
from escluster.config import Target
from escluster.k8s_plan import build_kubernetes_plan
from escluster.load import check_changes, load_stack_config, read_previous_state
from escluster.plan import build_plan
from escluster.state import STATE_OUTPUT, planned_state
from targets import docker as docker_target
from targets import kubernetes as kubernetes_target
from targets import swarm as swarm_target

config = load_stack_config()
previous = read_previous_state()
check_changes(previous, config)

credentials = StackCredentials(f"{config.cluster.name}-credentials", config.security)
if config.target is Target.kubernetes:
    kibana_recreate = previous is not None and previous.kibana_version != config.kibana_version
    outputs = kubernetes_target.deploy(build_kubernetes_plan(config), credentials, kibana_recreate=kibana_recreate)
elif config.target is Target.swarm and config.swarm is not None:
    outputs = swarm_target.deploy(build_plan(config), config.swarm, credentials)
else:
    outputs = docker_target.deploy(build_plan(config), credentials)

pulumi.export("elasticsearch_url", outputs.elasticsearch_url)
pulumi.export("kibana_url", outputs.kibana_url)
pulumi.export("ca_certificate", outputs.ca_certificate)
pulumi.export("elastic_password", pulumi.Output.secret(outputs.elastic_password))
# Known only once the setup step reached the formed cluster: a failed `up` leaves the last state in place.
# It holds no secret (the setup step's outputs are secret because its input is).
pulumi.export(
    STATE_OUTPUT,
    pulumi.Output.unsecret(outputs.setup_done.apply(lambda _: planned_state(config, formed=True).as_output())),
)
