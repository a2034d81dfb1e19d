"""Policy pack: `pulumi preview --policy-pack policy` judges every resource of a stack by these rules."""

from pulumi_policy import EnforcementLevel, PolicyPack

from elastic_policy.policies import POLICIES

PolicyPack(name="elastic-stack-rules", policies=list(POLICIES), enforcement_level=EnforcementLevel.MANDATORY)
