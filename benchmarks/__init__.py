"""Timing runs, outside the default test run."""
