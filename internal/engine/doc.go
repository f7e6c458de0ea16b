// Package engine is Ferry's reconciler: it composes source, render and apply
// into one pipeline per (repository, environment), driven by de-duplicating,
// rate-limited work queues that a cron resync (main) and pushes (urgent)
// feed. It keeps the
// status of every environment and the metrics that describe them.
//
// It reads no flags, files or environment variables: cmd/ferry builds the
// repositories and appliers it is given.
package engine
