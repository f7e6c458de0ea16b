// Package testenv gives tests the real parts Ferry runs against: a Kubernetes
// control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok-simulated nodes) started from binaries that hack/build-tools.sh compiles
// from Go modules, and Git repositories served over smart HTTP by Debian's
// `git http-backend`.
//
// A test that needs a part that is missing fails with one line saying which
// command provides it; it never skips.
package testenv
