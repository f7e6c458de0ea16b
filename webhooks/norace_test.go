//go:build !race

package webhooks

// raceMemoryFactor scales a memory bound on RSS; without the race detector
// RSS is the Go runtime's memory and the binary.
const raceMemoryFactor = 1
