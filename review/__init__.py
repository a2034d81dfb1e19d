"""Offline review of a change: render every stack under Pulumi's mock runtime, diff two renders.

Nothing here needs the Pulumi CLI, a state backend, credentials or a network: the real program runs
against mock providers, and what it asks the engine for is written down and compared.
"""

import sys
from pathlib import Path

# The policy pack's reading of workloads (policy/elastic_policy) is shared. Pulumi runs the pack from its
# own folder, so it is not a package of this tree: its folder joins the path instead.
_POLICY_PACK = str(Path(__file__).resolve().parent.parent / "policy")
if _POLICY_PACK not in sys.path:
    sys.path.append(_POLICY_PACK)
