"""Components on Docker engines (`dev`, `lab`); the cluster tasks, the setup step and the one-node-at-a-time
chain serve the Swarm target too."""
