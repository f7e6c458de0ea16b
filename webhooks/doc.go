// Package webhooks receives GitHub webhooks: it caps and authenticates each
// request, drops redeliveries, parses the events Ferry acts on and hands them
// to a non-blocking sink.
//
// Handlers validate, enqueue and return; they never call Git, Kubernetes or GitHub.
package webhooks
