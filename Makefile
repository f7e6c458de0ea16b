# Ferry's developer entry points. `make test` is what CI runs (.ci/run).

SHELL      := /usr/bin/env bash
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS    := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TOOLS_BIN  := $(shell hack/tools-bin.sh)
# -race everywhere; a package is taken off it only where it is measured too slow (none is).
GOTEST     ?= go test -race -timeout 30m
FUZZTIME   ?= 15s

.PHONY: all build tools chromium test vet demo demo-down cluster cluster-down clean

all: build

## build: compile bin/ferry as the Dockerfile does (static, no cgo, stripped)
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $(LDFLAGS)" -o bin/ferry ./cmd/ferry

## tools: build the local control plane (etcd, kube-*, kubectl, kwok, kustomize) into the cache
tools:
	hack/build-tools.sh

## chromium: install Debian's chromium (the dashboard's browser test) when it is missing
chromium:
	hack/install-chromium.sh

## vet: go vet and gofmt
vet:
	go vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

## test: build the tools and install chromium when missing, vet, run every test against real parts, then fuzz briefly
test: tools chromium vet
	FERRY_TOOLS_BIN=$(TOOLS_BIN) $(GOTEST) ./...
	go test -run '^$$' -fuzz '^FuzzGitHubHandler$$' -fuzztime $(FUZZTIME) ./webhooks

## demo: the whole story on this machine — three clusters, a Git server, ferry serve, a model from dev to prod
demo: build tools
	FERRY_TOOLS_BIN=$(TOOLS_BIN) go run ./hack/demo up bin/ferry

## demo-down: delete what make demo left running
demo-down:
	FERRY_TOOLS_BIN=$(TOOLS_BIN) go run ./hack/demo down bin/ferry

## cluster: start a local cluster and print the KUBECONFIG to use
cluster: tools
	hack/cluster.sh up

## cluster-down: delete the local cluster that `make cluster` started
cluster-down:
	hack/cluster.sh down

clean:
	rm -rf bin
