#!/usr/bin/env bash
# Builds a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl), kwok/kwokctl and kustomize from their Go modules into a
# versioned cache directory (see hack/tools-bin.sh). Idempotent: a binary that exists is
# not rebuilt. A cold build takes 15-20 minutes on 2 cores; a warm one, seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/hack/tools/versions.env"
bin=$("$root/hack/tools-bin.sh")
mkdir -p "$bin"

export GOFLAGS="-trimpath -buildvcs=false"
export CGO_ENABLED=0

# build NAME CMD...: runs CMD to produce $bin/NAME unless it exists, and reports the time.
build() {
  local name=$1; shift
  if [ -x "$bin/$name" ]; then
    echo "tools: $name: cached"
    return
  fi
  echo "tools: $name: building"
  local start=$SECONDS
  if ! "$@"; then
    echo "tools: $name: build failed (command: $*)" >&2
    exit 1
  fi
  [ -x "$bin/$name" ] || { echo "tools: $name: build produced no binary at $bin/$name" >&2; exit 1; }
  echo "tools: $name: built in $((SECONDS - start))s"
}

# in_tools NAME PKG: builds PKG from the hack/tools module (k8s.io/kubernetes and etcd,
# whose go.mod files use replace directives and so cannot be `go install`ed by version).
in_tools() {
  local name=$1 pkg=$2
  (cd "$root/hack/tools" && go build -ldflags="-s -w" -o "$bin/$name.tmp" "$pkg") && mv "$bin/$name.tmp" "$bin/$name"
}

# by_version NAME PKG@VERSION: `go install`s a module whose go.mod has no replace directives.
by_version() {
  local name=$1 pkg=$2
  local tmp
  tmp=$(mktemp -d "$bin/.install.XXXXXX")
  GOBIN=$tmp go install -ldflags="-s -w" "$pkg" && mv "$tmp/$name" "$bin/$name"
  rm -rf "$tmp"
}

# kwok_stages copies kwok's default Stages (how simulated nodes and pods move through
# their lives) next to the binaries. internal/testenv adds its own Stages to them: a
# kwokctl config that names any Stage replaces kwok's defaults, so they must be given too.
kwok_stages() {
  local dest
  dest="$(dirname "$bin")/kwok-stages"
  if [ -f "$dest/pod-complete.yaml" ]; then
    echo "tools: kwok stages: cached"
    return
  fi
  local dir
  dir=$(cd "$root/hack/tools" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@$KWOK" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { echo "tools: kwok stages: module sigs.k8s.io/kwok@$KWOK not found" >&2; exit 1; }
  mkdir -p "$dest.tmp"
  cp "$dir/kustomize/stage/node/fast/node-initialize.yaml" \
     "$dir/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$dir/kustomize/stage/pod/fast/pod-ready.yaml" \
     "$dir/kustomize/stage/pod/fast/pod-complete.yaml" \
     "$dir/kustomize/stage/pod/fast/pod-delete.yaml" "$dest.tmp/"
  chmod 0644 "$dest.tmp"/*.yaml
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  echo "tools: kwok stages: copied from sigs.k8s.io/kwok@$KWOK"
}

total=$SECONDS
echo "tools: into $bin"
build etcd                    in_tools etcd go.etcd.io/etcd/server/v3
build kube-apiserver          in_tools kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager in_tools kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler          in_tools kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubectl                 in_tools kubectl k8s.io/kubernetes/cmd/kubectl
build kwok                    by_version kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK"
build kwokctl                 by_version kwokctl "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK"
build kustomize               by_version kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE"
kwok_stages
echo "tools: all present in $((SECONDS - total))s"
