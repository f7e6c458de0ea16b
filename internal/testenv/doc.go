// Package testenv gives tests the real parts Ferry runs against: a Kubernetes
// control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok-simulated nodes) started from binaries that hack/build-tools.sh compiles
// from Go modules, and Git repositories served over smart HTTP by Debian's
// `git http-backend`. Fault-injection tests break them on purpose: a
// cluster's kube-apiserver stopped and started again (StopAPIServer), a Git
// server behind a proxy that answers 500 or hangs (Faulty), history rewritten
// (Reset, ForcePush), branches moved faster than git push can (MoveBranch).
// StartFerry runs a `ferry serve` built from the tree (BuildFerry).
//
// A test that needs a part that is missing fails with one line saying which
// command provides it; it never skips.
package testenv
