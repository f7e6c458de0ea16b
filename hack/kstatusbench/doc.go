// Package kstatusbench measures apply.Wait against cli-utils' kstatus
// watcher (docs/apply.md, "Why Wait is not kstatus's watcher"). It is a module
// of its own so that Ferry does not carry what the library brings with it
// (controller-runtime and cli-runtime) for the sake of a benchmark.
//
// Run: cd hack/kstatusbench && go test -run '^$' -bench WaitForCurrent -benchtime 11x -timeout 30m
// (after Ferry's own dependencies change: go mod tidy -e here first; -e
// because cli-utils' tests import kubectl packages that no longer exist at
// Ferry's Kubernetes version).
package kstatusbench
