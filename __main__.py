"""Elasticsearch + Kibana, one stack per environment: read the stack config, plan, deploy, export."""

import pulumi

from components.credentials import StackCredentials
from escluster.config import Target
from escluster.load import ConfigError, load_stack_config
from escluster.plan import build_plan
from targets import docker as docker_target
from targets import swarm as swarm_target

config = load_stack_config()
plan = build_plan(config)

if config.target is Target.kubernetes:
    raise ConfigError.at("target", "kubernetes is not built yet; use docker or swarm")

credentials = StackCredentials(f"{plan.cluster_name}-credentials", config.security)
if config.target is Target.swarm and config.swarm is not None:
    outputs = swarm_target.deploy(plan, config.swarm, credentials)
else:
    outputs = docker_target.deploy(plan, credentials)

pulumi.export("elasticsearch_url", outputs.elasticsearch_url)
pulumi.export("kibana_url", outputs.kibana_url)
pulumi.export("ca_certificate", outputs.ca_certificate)
pulumi.export("elastic_password", pulumi.Output.secret(outputs.elastic_password))
