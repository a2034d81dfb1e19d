"""Offline review of a change: render every stack under Pulumi's mock runtime, diff two renders.

Nothing here needs the Pulumi CLI, a state backend, credentials or a network: the real program runs
against mock providers, and what it asks the engine for is written down and compared.
"""
