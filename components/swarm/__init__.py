"""Components of the Swarm target (`staging`): one service per node, pinned by placement labels."""
