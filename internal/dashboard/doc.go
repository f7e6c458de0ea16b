// Package dashboard serves Ferry's read-only web page: for each repository a
// row per model and a column per environment in promotion order, each cell
// the version, health, pipeline step, age and promotion of that model there,
// and a history panel per environment. The page is rendered on the server
// with html/template and works without JavaScript; a small embedded script
// follows Server-Sent Events (/events) and swaps in the fragment of each
// environment whose status changed, and loads a closed history panel's
// table from /fragment. docs/dashboard.md has the design.
//
// It reads statuses, never writes them: the engine owns them, and
// /api/v1/status (cmd/ferry) stays the machine interface over the same data.
// It does no Git, Kubernetes or GitHub calls, and starts no goroutine that
// outlives a request.
package dashboard
