// Package object is the one home of what every Ferry package says about a
// Kubernetes object: how it is named in messages (Kind/namespace/name), its
// identity (group, kind, namespace, name, without the version), which objects
// go first (Namespaces, then CRDs), its content hash, and how a commit SHA is
// shortened for people. It holds no state and makes no requests.
package object
