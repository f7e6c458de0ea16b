package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/preview"
	"github.com/ferry-gitops/ferry/internal/ring"
	"github.com/ferry-gitops/ferry/webhooks"
)

// Forwarding is bounded per member, so that a member that does not answer
// holds up only the webhooks meant for it: at most memberQueue distinct
// notifications wait for one member (a repeat of one waiting is merged into
// it), one call to it at a time (ring.ForwardTimeout), and after a failed
// call its queue is dropped and new notifications for it are refused for
// memberBackoff. A refused notification answers GitHub 503; the owner's
// resync, or its successor's fetch of what it wins, catches up.
const (
	memberQueue   = 256
	memberBackoff = 5 * time.Second
	memberIdle    = time.Minute // a member's sender ends after this long with nothing to send
)

// forwarder hands notifications to the members that own their repositories.
type forwarder struct {
	ctx    context.Context
	client *http.Client
	token  string
	log    *slog.Logger

	mu      sync.Mutex
	members map[string]*memberSender // by identity
	wg      sync.WaitGroup
}

// memberSender is one member's queue and the goroutine that drains it.
type memberSender struct {
	to      ring.Member
	pending map[noteKey]ring.Notification
	order   []noteKey
	wake    chan struct{}
	refuse  time.Time // refuse new notifications until then
}

// noteKey merges repeats: one push or checks notification per repository,
// one per pull request.
type noteKey struct {
	repo, kind string
	pr         int
}

func newForwarder(ctx context.Context, client *http.Client, token string, log *slog.Logger) *forwarder {
	return &forwarder{ctx: ctx, client: client, token: token, log: log, members: map[string]*memberSender{}}
}

// add queues n for member to; false when that member's queue is full or it
// failed to answer a moment ago.
func (f *forwarder) add(to ring.Member, n ring.Notification, k noteKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		return false
	}
	s, ok := f.members[to.Identity]
	if !ok {
		s = &memberSender{pending: map[noteKey]ring.Notification{}, wake: make(chan struct{}, 1)}
		f.members[to.Identity] = s
		f.wg.Go(func() { f.send(to.Identity, s) })
	}
	s.to = to // its newest address
	if time.Now().Before(s.refuse) {
		return false
	}
	if _, queued := s.pending[k]; !queued {
		if len(s.order) >= memberQueue {
			return false
		}
		s.order = append(s.order, k)
	}
	s.pending[k] = n
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// send drains one member's queue until ctx ends or it has been idle for
// memberIdle.
func (f *forwarder) send(id string, s *memberSender) {
	idle := time.NewTimer(memberIdle)
	defer idle.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-idle.C:
			f.mu.Lock()
			if len(s.order) == 0 {
				delete(f.members, id)
				f.mu.Unlock()
				return
			}
			f.mu.Unlock()
		case <-s.wake:
		}
		for {
			f.mu.Lock()
			if len(s.order) == 0 {
				f.mu.Unlock()
				break
			}
			k := s.order[0]
			s.order = s.order[1:]
			n, to := s.pending[k], s.to
			delete(s.pending, k)
			f.mu.Unlock()
			if err := ring.Forward(f.ctx, f.client, to, f.token, n); err != nil {
				f.mu.Lock()
				dropped := len(s.order)
				s.order, s.pending, s.refuse = nil, map[noteKey]ring.Notification{}, time.Now().Add(memberBackoff)
				f.mu.Unlock()
				f.log.Warn("forward to the owner failed; its queue is dropped and its resync or successor catches up",
					"member", id, "repository", n.Repository, "kind", n.Kind, "dropped", dropped, "error", err)
			}
		}
		idle.Reset(memberIdle)
	}
}

// wait returns once every sender has stopped (after ctx ended).
func (f *forwarder) wait() { f.wg.Wait() }

// pullRequestNote is a pull request event as members pass it on: a wire
// format of its own, so two versions of ferry agree during an upgrade.
type pullRequestNote struct {
	Number  int    `json:"number"`
	Action  string `json:"action"`
	BaseRef string `json:"baseRef"`
	HeadSHA string `json:"headSHA"`
	Fork    bool   `json:"fork"`
}

// notification is ev as the ring forwards it, and the key that merges its
// repeats; false for events it does not forward.
func notification(ev webhooks.Event) (ring.Notification, noteKey, bool) {
	n := ring.Notification{Repository: ev.Repository}
	switch ev.Kind {
	case webhooks.KindPush:
		n.Kind = ring.KindPush
	case webhooks.KindChecks:
		n.Kind = ring.KindChecks
	case webhooks.KindPullRequest:
		pr := ev.PullRequest
		payload, err := json.Marshal(pullRequestNote{Number: pr.Number, Action: pr.Action, BaseRef: pr.BaseRef, HeadSHA: pr.HeadSHA, Fork: pr.Fork})
		if err != nil {
			return n, noteKey{}, false
		}
		n.Kind, n.Payload = ring.KindPullRequest, payload
		return n, noteKey{repo: n.Repository, kind: n.Kind, pr: pr.Number}, true
	default:
		return n, noteKey{}, false
	}
	return n, noteKey{repo: n.Repository, kind: n.Kind}, true
}

// notifier is the engine as accept (and sink) use it.
type notifier interface {
	Notify(repo string) bool
	NotifyChecks(repo string) bool
}

// previewer is the preview pool as accept (and sink) use it.
type previewer interface {
	Notify(ev preview.Event) bool
}

var (
	_ notifier  = (*engine.Engine)(nil)
	_ previewer = (*preview.Pool)(nil)
)

// accept hands a notification to the engine or the preview pool: one
// another member forwarded (this replica owned the repository when it was
// sent; if it no longer does, the engine drops it and the new owner fetches
// what it won), or, through sink, one this replica's receiver took.
func accept(eng notifier, previews previewer, log *slog.Logger) func(ring.Notification) bool {
	return func(n ring.Notification) bool {
		switch n.Kind {
		case ring.KindPush:
			return eng.Notify(n.Repository)
		case ring.KindChecks:
			return eng.NotifyChecks(n.Repository)
		case ring.KindPullRequest:
			var pr pullRequestNote
			if err := json.Unmarshal(n.Payload, &pr); err != nil || pr.Number <= 0 {
				log.Warn("pull request notification dropped: its payload is not a pull request", "repository", n.Repository)
				return true
			}
			return previews.Notify(preview.Event{Repository: n.Repository, Number: pr.Number, Action: pr.Action, BaseRef: pr.BaseRef, HeadSHA: pr.HeadSHA, Fork: pr.Fork})
		}
		return true
	}
}
