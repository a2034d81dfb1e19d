"""Elasticsearch + Kibana, one stack per environment: read the stack config, plan, deploy, export."""

import pulumi

from components.credentials import StackCredentials
from escluster.config import Target
from escluster.k8s_plan import build_kubernetes_plan
from escluster.load import load_stack_config
from escluster.plan import build_plan
from targets import docker as docker_target
from targets import kubernetes as kubernetes_target
from targets import swarm as swarm_target

config = load_stack_config()

credentials = StackCredentials(f"{config.cluster.name}-credentials", config.security)
if config.target is Target.kubernetes:
    outputs = kubernetes_target.deploy(build_kubernetes_plan(config), credentials)
elif config.target is Target.swarm and config.swarm is not None:
    outputs = swarm_target.deploy(build_plan(config), config.swarm, credentials)
else:
    outputs = docker_target.deploy(build_plan(config), credentials)

pulumi.export("elasticsearch_url", outputs.elasticsearch_url)
pulumi.export("kibana_url", outputs.kibana_url)
pulumi.export("ca_certificate", outputs.ca_certificate)
pulumi.export("elastic_password", pulumi.Output.secret(outputs.elastic_password))
