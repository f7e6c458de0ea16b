package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// retried runs fn until it succeeds, fails for good, or ctx ends: a
// transient failure (a held inventory, a 429, an API server away) is tried
// again after a backoff of 1 s, doubling up to 15 s. For SyncOnce, which has
// no queue to retry with.
func retried(ctx context.Context, fn func() error) error {
	delay := time.Second
	for {
		err := fn()
		if _, transient := errors.AsType[*retryError](err); !transient || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(jitterDuration(delay)):
		}
		delay = min(2*delay, 15*time.Second)
	}
}

// retryError marks a transient failure: the item is requeued with backoff.
type retryError struct{ err error }

func (r *retryError) Error() string { return r.err.Error() }
func (r *retryError) Unwrap() error { return r.err }

// jitter spreads a rate limiter's delays by ±20 %, so failing environments do
// not retry in lockstep.
type jitter[T comparable] struct {
	workqueue.TypedRateLimiter[T]
}

func (j *jitter[T]) When(item T) time.Duration {
	return jitterDuration(j.TypedRateLimiter.When(item))
}

// jitterDuration spreads d by ±20 %.
func jitterDuration(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
