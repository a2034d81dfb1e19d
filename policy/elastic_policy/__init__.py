"""The rules a rendered Elasticsearch + Kibana stack is judged by, as Pulumi policies.

`workloads` reads containers, settings files and Kubernetes objects out of resource inputs (it imports
nothing of Pulumi, so the offline review shares it); `policies` holds the policy objects.
"""
