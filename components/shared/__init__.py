"""Components both targets use: the cluster CA and node certificates, the generated credentials."""
