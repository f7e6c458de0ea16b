package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ferry-gitops/ferry/apply"
)

func TestSyncOnceTriesATransientFailureAgainUntilItsDeadline(t *testing.T) {
	busy := apierrors.NewTooManyRequests("the API server is busy", 0)
	require.True(t, apply.IsTransient(busy))
	w := newWorld(t, func(w *world, o *Options) { w.idle, w.dev.applyErr = true, []error{busy, busy} })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	statuses, err := w.eng.SyncOnce(ctx, "dev")
	require.NoError(t, err, "%+v", statuses)
	assert.Equal(t, 3, w.dev.count("Apply"), "two refusals, then the apply")

	w.dev.mu.Lock()
	w.dev.applyErr = []error{busy, busy, busy, busy, busy, busy}
	w.dev.mu.Unlock()
	short, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	_, err = w.eng.SyncOnce(short, "dev")
	require.Error(t, err, "still refused when the deadline came")
	assert.Contains(t, err.Error(), "busy")
}
