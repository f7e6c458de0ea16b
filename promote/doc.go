// Package promote owns how a model moves to the next environment: which
// models differ between two environments (Decide), the edit of the target's
// pin file that carries one (EditPin, byte for byte outside the changed
// values), the branch and pull request it travels in (Branch, Title, Body,
// EnsurePullRequest), and the GitHub conversation around it: commit statuses,
// required checks and comments, through a client that waits out rate limits
// and retries only what is safe to retry. It also words a pull request's
// preview (Preview, PreviewBody, PreviewStatus) and keeps it in one comment
// (UpsertComment).
//
// It knows nothing of Kubernetes, and does no Git: the engine writes and
// pushes the branch (package source) and hands promote what it needs as data.
package promote
