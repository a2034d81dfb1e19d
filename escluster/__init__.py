"""Pure model of an Elasticsearch + Kibana deployment: stack config and the derived plan.

Nothing in this package imports Pulumi except `load`, which reads a stack's config.
"""
