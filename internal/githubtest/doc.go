// Package githubtest serves the part of GitHub's REST API that Ferry calls
// (pull requests, issue labels and comments, commit statuses and check runs,
// and with Options.App a GitHub App's installations and tokens) from an
// httptest server that keeps its state in memory, so tests drive a
// real go-github client against it.
//
// It answers with GitHub's status codes, error bodies, pagination Link headers
// and rate-limit headers, so a caller's error handling runs as it will against
// github.com; Fault makes it fail the ways GitHub fails. It holds no Git
// objects: refs and SHAs are opaque keys, and a branch exists only as far as
// Options.BranchExists says. Driving Git, and merging, is the test's job.
package githubtest
