"""`python -m verify`: check a deployed cluster against its stack's outputs (verify/checks.py)."""
