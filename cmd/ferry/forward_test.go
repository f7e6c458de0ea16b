package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/preview"
	"github.com/ferry-gitops/ferry/internal/ring"
	"github.com/ferry-gitops/ferry/webhooks"
)

// received records what accept hands the engine and the preview pool.
type received struct {
	mu    sync.Mutex
	calls []string
	prs   []preview.Event
}

func (r *received) Notify(repo string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "push "+repo)
	return true
}

func (r *received) NotifyChecks(repo string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "checks "+repo)
	return true
}

type receivedPRs struct{ *received }

func (r receivedPRs) Notify(ev preview.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prs = append(r.prs, ev)
	return true
}

func TestEveryKindOfEventReachesTheOwnerAsTheReceiverWouldHaveHandedIt(t *testing.T) {
	const token = "test-ring-token"
	got := &received{}
	owner := httptest.NewServer(ring.Handler(token, "owner", accept(got, receivedPRs{got}, slog.New(slog.DiscardHandler)), nil))
	t.Cleanup(owner.Close)
	to := ring.Member{Identity: "owner", Address: owner.URL}

	pr := webhooks.Event{Kind: webhooks.KindPullRequest, Repository: "models", PullRequest: &webhooks.PullRequest{
		Number: 42, Action: "synchronize", BaseRef: "main", HeadSHA: "0123456789abcdef0123456789abcdef01234567", Fork: true,
	}}
	for _, ev := range []webhooks.Event{
		{Kind: webhooks.KindPush, Repository: "models", Push: &webhooks.Push{Branch: "main"}},
		{Kind: webhooks.KindChecks, Repository: "models", Checks: &webhooks.Checks{}},
		pr,
	} {
		n, _, ok := notification(ev)
		require.True(t, ok, "%s is forwarded", ev.Kind)
		require.NoError(t, ring.Forward(t.Context(), &http.Client{}, to, token, n))
	}
	assert.Equal(t, []string{"push models", "checks models"}, got.calls)
	assert.Equal(t, []preview.Event{{Repository: "models", Number: 42, Action: "synchronize", BaseRef: "main", HeadSHA: pr.PullRequest.HeadSHA, Fork: true}}, got.prs, "the owner previews the pull request the receiver would have")
}

func TestAMemberThatDoesNotAnswerHoldsUpOnlyItsOwnWebhooks(t *testing.T) {
	const token = "test-ring-token"
	arrived := make(chan struct{}, 1)
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // else the server never notices the caller left
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	t.Cleanup(hung.Close)
	got := &received{}
	healthy := httptest.NewServer(ring.Handler(token, "healthy", accept(got, receivedPRs{got}, slog.New(slog.DiscardHandler)), nil))
	t.Cleanup(healthy.Close)

	ctx, cancel := context.WithCancel(t.Context())
	f := newForwarder(ctx, &http.Client{}, token, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { cancel(); f.wait() })
	slow := ring.Member{Identity: "slow", Address: hung.URL}
	fast := ring.Member{Identity: "healthy", Address: healthy.URL}

	push := func(to ring.Member, repo string) bool {
		n, k, _ := notification(webhooks.Event{Kind: webhooks.KindPush, Repository: repo})
		return f.add(to, n, k)
	}
	require.True(t, push(slow, "repo-0"))
	<-arrived // repo-0 is on its way, and hangs
	for i := 1; i <= memberQueue; i++ {
		require.True(t, push(slow, fmt.Sprintf("repo-%d", i)), "queued %d", i)
	}
	assert.False(t, push(slow, "one-too-many"), "the slow member's queue is full: 503")
	assert.True(t, push(slow, "repo-1"), "a repeat of a queued notification merges into it")

	assert.True(t, push(fast, "models"), "another member's queue is its own")
	require.Eventually(t, func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		return len(got.calls) == 1
	}, 5*time.Second, 10*time.Millisecond, "the healthy member gets its webhook while the slow one hangs")

	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.members["slow"].order) == 0
	}, 2*ring.ForwardTimeout+time.Second, 20*time.Millisecond, "once a call to it failed, the slow member's queue is dropped")
	assert.False(t, push(slow, "after-the-failure"), "and new webhooks for it are refused for a while, its queue empty")
	assert.True(t, push(fast, "models-2"), "the healthy member's are not")
}
