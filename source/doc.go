// Package source is Ferry's only door to Git: it keeps one clone per repository,
// fetches incrementally, resolves branch heads itself, checks out read-only trees
// for rendering, reports the paths changed between two commits, and writes and
// pushes the commits that promotions are made of. Pull requests are fetched
// through a read-only door of their own (PullRequests), which cannot push.
//
// It knows nothing of Kubernetes or the GitHub API; the engine composes it with
// the packages that do.
package source
