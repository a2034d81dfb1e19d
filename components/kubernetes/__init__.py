"""Components of the Kubernetes target (`prod`): StatefulSets, Kibana, the setup Job, the roll, MetalLB."""
