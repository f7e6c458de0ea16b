//go:build race

package webhooks

// raceMemoryFactor scales a memory bound on RSS: the race detector keeps
// shadow memory for every byte the program touches (measured here about 2.3
// times as much again), which the Go runtime's own accounting leaves out.
const raceMemoryFactor = 4
