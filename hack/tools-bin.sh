#!/usr/bin/env bash
# Prints the directory that holds the locally built control plane binaries:
# $FERRY_TOOLS_BIN when set, else a cache directory named after the pinned versions.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/versions.env
. "$root/hack/tools/versions.env"
if [ -n "${FERRY_TOOLS_BIN:-}" ]; then
  echo "$FERRY_TOOLS_BIN"
else
  echo "${HOME}/.cache/ferry/tools/k8s-${KUBERNETES}_etcd-${ETCD}_kwok-${KWOK}_kustomize-${KUSTOMIZE}/bin"
fi
