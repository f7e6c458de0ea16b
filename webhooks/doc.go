// Package webhooks receives GitHub webhooks: it caps each request and how many
// unauthenticated bodies are read at once, authenticates it, drops
// redeliveries, parses the events Ferry acts on (push, pull_request, and the
// check_run, check_suite and status events that re-check required checks) and
// hands them to a non-blocking sink.
//
// Handlers validate, enqueue and return; they never call Git, Kubernetes or GitHub.
package webhooks
