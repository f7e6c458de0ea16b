// Package promote decides when a model may move to the next environment, edits
// that environment's version pins, and opens or updates the pull request (and
// commit statuses and previews) that carry it there.
//
// It never talks to a cluster; the engine hands it health and test results.
package promote
