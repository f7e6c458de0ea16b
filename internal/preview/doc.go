// Package preview shows, on a pull request, what merging it would change in
// each environment: it fetches the pull request's head read-only
// (source.PullRequests), renders every environment the change touches at the
// head and at the merge base (render, sharing the engine's cache), compares
// them (objects, model versions, tests), checks each environment's apply
// policy, optionally dry-runs the head against the live cluster (apply), and
// posts one comment and the ferry/preview commit status (promote).
//
// Its Pool runs beside the engine with workers of its own, coalescing the
// events of one pull request, so previews never delay a reconcile. It reads
// no flags, files or environment variables: cmd/ferry builds what it is given.
package preview
