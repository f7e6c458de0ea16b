// Package ring shares repositories between ferry replicas. Each replica holds
// one Kubernetes Lease of its own (ferry-member-<identity>, labelled
// ferry.dev/ring=<name>) on the home cluster; the replicas whose Leases have
// not expired are the ring's members, and every member computes the same owner
// for a repository by rendezvous hashing of its name over them.
//
// The package owns membership (holding, renewing and leaving its Lease,
// following the others'), ownership (Owner) and the fence that stops a replica
// from mutating before its Lease can expire (May, Fence), plus the small
// authenticated HTTP surface members use to hand webhooks to an owner and to
// read each other's status (Handler, Forward, FetchStatus).
//
// It leaves to the engine what to do with ownership: which work to start, when
// to ask May again, how to make each mutation safe under a brief overlap (SSA,
// resourceVersion on the inventory, UID preconditions), and which listener
// serves Handler.
package ring
