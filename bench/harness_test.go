package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// listenConfig is the start of a ferry.yaml for a benchmark: both listeners
// on a port the system picks (testenv.StartFerry reads which), so no port is
// guessed and none is taken from under another process.
const listenConfig = "listen: 127.0.0.1:0\nadminListen: 127.0.0.1:0\n"

// healthy waits until the status of ferry reports n healthy environments,
// for at most timeout, and fails the benchmark with the last status if it
// never does.
func healthy(b *testing.B, ferry *testenv.Ferry, n int, timeout time.Duration) {
	b.Helper()
	var last string
	err := wait.PollUntilContextTimeout(b.Context(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		status, err := ferry.Status(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = string(status)
		return strings.Count(last, `"health":"Healthy"`) == n, nil
	})
	if err != nil {
		b.Fatalf("waited %s for %d healthy environments: %v\nlast status: %s\n%s", timeout, n, err, tail(last, 2000), ferry.Tail(20))
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
