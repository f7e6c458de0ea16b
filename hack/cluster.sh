#!/usr/bin/env bash
# Starts (up) or deletes (down) a long-lived local cluster named ferry-dev from the
# binaries hack/build-tools.sh built. kwokctl gets its own work directory and
# kubeconfig under ~/.cache/ferry, so ~/.kube/config is never touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$("$root/hack/tools-bin.sh")
state=${FERRY_CLUSTER_DIR:-$HOME/.cache/ferry/cluster}
name=ferry-dev
kubeconfig=$state/kubeconfig
export KWOK_WORKDIR=$state/kwok KWOK_KUBECTL_BINARY=$bin/kubectl
mkdir -p "$state"

case "${1:-up}" in
up)
  if "$bin/kwokctl" get clusters 2>/dev/null | grep -qx "$name"; then
    echo "cluster $name already exists"
  else
    start=$SECONDS
    "$bin/kwokctl" create cluster --name "$name" --runtime binary \
      --etcd-binary "$bin/etcd" \
      --kube-apiserver-binary "$bin/kube-apiserver" \
      --kube-controller-manager-binary "$bin/kube-controller-manager" \
      --kube-scheduler-binary "$bin/kube-scheduler" \
      --kwok-controller-binary "$bin/kwok" \
      --kubeconfig "$kubeconfig" --disable-qps-limits --wait 60s \
      --extra-args kube-apiserver=service-cluster-ip-range=10.96.0.0/16
    "$bin/kwokctl" scale node --name "$name" --replicas 2
    echo "cluster $name started in $((SECONDS - start))s"
  fi
  echo
  echo "export KUBECONFIG=$kubeconfig"
  echo "export PATH=$bin:\$PATH   # kubectl, kustomize"
  ;;
down)
  "$bin/kwokctl" delete cluster --name "$name"
  rm -f "$kubeconfig"
  ;;
*)
  echo "usage: $0 up|down" >&2
  exit 2
  ;;
esac
