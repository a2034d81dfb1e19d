"""Elasticsearch + Kibana, one stack per environment: read the stack config and what the last `up` left,
refuse unsafe changes, plan, deploy, export."""

import pulumi

from components.shared.credentials import StackCredentials
from escluster.changes import decide
from escluster.k8s_plan import build_kubernetes_plan
from escluster.load import check_changes, kubernetes_access, load_stack_config, previous_state
from escluster.plan import build_plan
from escluster.sections import Target
from escluster.state import STATE_OUTPUT
from targets import docker as docker_target
from targets import kubernetes as kubernetes_target
from targets import swarm as swarm_target

config = load_stack_config()
access = kubernetes_access(config)
previous = previous_state(config)
check_changes(previous, config)
lifecycle = decide(config, previous)
if lifecycle.ca.step():
    pulumi.log.warn(lifecycle.ca.step())

credentials = StackCredentials(f"{config.cluster.name}-credentials", config.security)
seeds: tuple[str, ...] = ()
if config.target is Target.kubernetes:
    kibana_recreate = previous is not None and previous.kibana_version != config.kibana_version
    k8s_plan = build_kubernetes_plan(config, lifecycle, access)
    bootstrap_nodes = k8s_plan.bootstrap_nodes
    outputs = kubernetes_target.deploy(k8s_plan, credentials, kibana_recreate=kibana_recreate)
else:
    plan = build_plan(config, lifecycle)
    seeds, bootstrap_nodes = plan.seed_hosts, plan.bootstrap_nodes
    if config.target is Target.swarm and config.swarm is not None:
        outputs = swarm_target.deploy(plan, config.swarm, credentials)
    else:
        outputs = docker_target.deploy(plan, credentials)

pulumi.export("elasticsearch_url", outputs.elasticsearch_url)
pulumi.export("kibana_url", outputs.kibana_url)
pulumi.export("ca_certificate", outputs.ca_certificate)
pulumi.export("elastic_password", pulumi.Output.secret(outputs.elastic_password))
pulumi.export("certificate_expiry", outputs.certificate_expiry)
# Known only once every step of this run on the cluster passed: a failed `up` sends no outputs, and the
# engine keeps the last ones. It holds no secret (the tasks' outputs are secret because their input is).
pulumi.export(
    STATE_OUTPUT,
    pulumi.Output.unsecret(
        outputs.settled.apply(lambda _: lifecycle.state(config, seeds, bootstrap_nodes).as_output())
    ),
)
