#!/usr/bin/env bash
# After a failed end-to-end leg: what the engines say, into DIR (default e2e-artifacts), for the workflow to
# upload. It never fails itself, and asks only what is there (no Kubernetes API: no kubectl output).
set -u
out=${1:-e2e-artifacts}
mkdir -p "$out"
if command -v docker > /dev/null; then
  docker ps -a > "$out/docker-ps.txt" 2>&1
  for id in $(docker ps -aq 2> /dev/null); do
    name=$(docker inspect --format '{{.Name}}' "$id" 2> /dev/null | tr -d /)
    docker logs --tail 2000 "$id" > "$out/container-${name:-$id}.log" 2>&1
  done
  for service in $(docker service ls -q 2> /dev/null); do
    { docker service ps --no-trunc "$service"; docker service logs --tail 2000 "$service"; } \
      > "$out/service-$service.log" 2>&1
  done
fi
if command -v kubectl > /dev/null && kubectl version --request-timeout=5s > /dev/null 2>&1; then
  kubectl get all,pvc,events --all-namespaces > "$out/kubernetes.txt" 2>&1
  for namespace in e2e metallb-system; do
    for pod in $(kubectl --namespace "$namespace" get pods --output name 2> /dev/null); do
      kubectl --namespace "$namespace" logs --all-containers --tail 2000 "$pod" \
        > "$out/pod-$namespace-${pod#pod/}.log" 2>&1
    done
  done
fi
exit 0
