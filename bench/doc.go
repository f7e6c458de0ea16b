// Package bench holds Ferry's end-to-end benchmarks: push-to-applied latency
// against a scripted baseline, and the memory of ferry serve with many
// repositories. See README.md here for how to run them.
package bench
