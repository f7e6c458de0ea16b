// Package ring shares repositories between ferry replicas. Each replica holds
// one Kubernetes Lease of its own (ferry-member-<identity>, labelled
// ferry.dev/ring=<name>, signed with the ring's token) on the home cluster;
// the replicas whose signed Leases this replica saw renewed within their
// duration are the ring's members, and every member computes the same owner
// for a repository by rendezvous hashing of its name over them.
//
// The package owns membership (holding, renewing and leaving its Lease,
// following the others', standing back from another process with the same
// identity), ownership (Owner), the fence that stops a replica from mutating
// before its Lease can expire or once it is lost (May, Fence), who has left
// (Departed), plus the small signed HTTP surface members use to hand webhooks
// to an owner and to read each other's status (Handler, Forward, FetchStatus).
// docs/ring.md says what it promises.
//
// It leaves to the engine what to do with ownership: which work to start, when
// to ask May again, how to make each mutation safe under a brief overlap (SSA,
// resourceVersion on the inventory, UID preconditions), and which listener
// serves Handler.
package ring
