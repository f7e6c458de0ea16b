// Package faulttest holds what Ferry's fault-injection tests share: faults
// put between ferry and the parts it depends on (a gate that stops requests
// in the middle of an apply, a throttle answering 429, a proxy in front of a
// kube-apiserver) and the end state every such test asserts (an inventory
// equal to the cluster's ferry-labelled objects, nothing foreign deleted, no
// goroutine left behind). The faults themselves (a stopped kube-apiserver, a
// Git server answering 500 or hanging) live in internal/testenv, beside the
// parts they break.
package faulttest
