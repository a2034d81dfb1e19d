"""The rules a rendered Elasticsearch + Kibana stack is judged by, as Pulumi policies (docs/rules.md).

`reading` reads resource inputs one value at a time, so that a value a preview does not know yet stops
only the check that needs it; `workloads` reads containers and settings files out of resource inputs (it
needs nothing of Pulumi's engine, so the offline review shares it); `content`, `disruption` and `metallb`
hold the checks and `policies` the policy objects.
"""
