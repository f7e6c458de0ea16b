package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/config"
	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/httpserver"
	"github.com/ferry-gitops/ferry/internal/preview"
	"github.com/ferry-gitops/ferry/internal/ring"
	"github.com/ferry-gitops/ferry/webhooks"
)

// replica is ferry serve's place in a ring of replicas (coordination in
// ferry.yaml): its member Lease, the listener the other members reach it on,
// the token they share, and the queue of webhooks it hands to their owners.
type replica struct {
	ring     *ring.Ring
	token    string
	listener net.Listener
	client   *http.Client
	forwards chan forward
	log      *slog.Logger
}

// forward is a notification on its way to the member that owns its repository.
type forward struct {
	to ring.Member
	n  ring.Notification
}

// Forwarding is bounded: forwardWorkers calls at once (each bounded by
// ring.ForwardTimeout), forwardQueue waiting; a webhook that finds the queue
// full is answered 503, as one the engine's queue cannot take.
const (
	forwardWorkers = 4
	forwardQueue   = 256
)

// joinRing prepares this replica's membership: the home cluster's client,
// the ring listener (bound now, so that its address can be advertised) and
// the Ring, which joins when run runs.
func joinRing(c *config.Coordination, getenv func(string) string, log *slog.Logger) (*replica, error) {
	token := getenv(c.TokenEnv)
	if token == "" {
		return nil, fmt.Errorf("coordination.tokenEnv: $%s is empty; set it to the token every replica shares (from one Secret)", c.TokenEnv)
	}
	rest, err := restConfig(config.Cluster{Kubeconfig: c.Kubeconfig, Context: c.Context})
	if err != nil {
		return nil, fmt.Errorf("coordination: home cluster: %w", err)
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("coordination: home cluster: %w", err)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("coordination.listen: %w", err)
	}
	address, err := advertise(c, ln.Addr(), getenv)
	if err != nil {
		ln.Close()
		return nil, err
	}
	r, err := ring.New(ring.Options{
		Client: client, Namespace: c.Namespace, Name: c.Ring, Address: address,
		LeaseDuration: c.LeaseDurationValue(), Logger: log,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("coordination: %w", err)
	}
	return &replica{
		ring: r, token: token, listener: ln, log: log,
		client:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: forwardWorkers}},
		forwards: make(chan forward, forwardQueue),
	}, nil
}

// advertise is how the other members reach this one: coordination.advertise;
// else the listener's own address when it names a host; else $POD_IP with the
// listener's port.
func advertise(c *config.Coordination, bound net.Addr, getenv func(string) string) (string, error) {
	if c.Advertise != "" {
		return c.Advertise, nil
	}
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "", fmt.Errorf("coordination.listen: %w", err)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return "http://" + bound.String(), nil
	}
	if ip := getenv("POD_IP"); ip != "" {
		return "http://" + net.JoinHostPort(ip, port), nil
	}
	return "", errors.New("coordination.advertise: unset, and neither coordination.listen's host nor $POD_IP says how the other replicas reach this one; set it (e.g. http://10.1.2.3:8082) or POD_IP (the downward API's status.podIP)")
}

// holds makes every applier hold its inventories as this replica, and
// ignore the hold of a replica that is no longer a live member.
func (r *replica) holds(o *apply.Options) {
	o.Identity = r.ring.Self().Identity
	o.HolderAlive = func(identity string) bool {
		return slices.ContainsFunc(r.ring.Members(), func(m ring.Member) bool { return m.Identity == identity })
	}
}

// route hands an event for a repository another live member owns to that
// member, and every other event to local. Before this replica has seen the
// ring it keeps the event: the engine drops what it does not own, and the
// owner fetches what it wins when the ring changes.
func (r *replica) route(local func(webhooks.Event) bool) func(webhooks.Event) bool {
	self := r.ring.Self().Identity
	return func(ev webhooks.Event) bool {
		owner, ok := r.ring.Owner(ev.Repository)
		if !ok || owner.Identity == self {
			return local(ev)
		}
		n, ok := notification(ev)
		if !ok {
			return local(ev)
		}
		select {
		case r.forwards <- forward{to: owner, n: n}:
			return true
		default:
			r.log.Warn("forward queue full; the owner's resync will catch this event", "repository", ev.Repository, "owner", owner.Identity, "kind", n.Kind)
			return false
		}
	}
}

// notification is ev as the ring forwards it; false for events it does not
// forward.
func notification(ev webhooks.Event) (ring.Notification, bool) {
	n := ring.Notification{Repository: ev.Repository}
	switch ev.Kind {
	case webhooks.KindPush:
		n.Kind = ring.KindPush
	case webhooks.KindChecks:
		n.Kind = ring.KindChecks
	case webhooks.KindPullRequest:
		payload, err := json.Marshal(previewEvent(ev))
		if err != nil {
			return n, false
		}
		n.Kind, n.Payload = ring.KindPullRequest, payload
	default:
		return n, false
	}
	return n, true
}

// accept takes a notification another member forwarded: this replica owned
// the repository when it was sent (if it no longer does, the engine drops it
// and the new owner fetches what it won).
func (r *replica) accept(eng *engine.Engine, previews *preview.Pool) func(ring.Notification) bool {
	return func(n ring.Notification) bool {
		switch n.Kind {
		case ring.KindPush:
			return eng.Notify(n.Repository)
		case ring.KindChecks:
			return eng.NotifyChecks(n.Repository)
		case ring.KindPullRequest:
			var ev preview.Event
			if err := json.Unmarshal(n.Payload, &ev); err != nil || ev.Repository != n.Repository {
				r.log.Warn("forwarded pull request dropped: its payload is not a pull request of the repository", "repository", n.Repository)
				return true
			}
			return previews.Notify(ev)
		}
		return true
	}
}

// run serves the ring listener, holds the Lease and forwards notifications
// until ctx ends; then it leaves the ring (deleting its Lease, so the others
// take over at once) and returns once all of it has stopped.
func (r *replica) run(ctx context.Context, handler http.Handler) error {
	srv := httpserver.New(r.listener.Addr().String(), handler, httpserver.Options{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(r.listener); !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("ring listener", "addr", r.listener.Addr().String(), "error", err)
		}
	})
	for range forwardWorkers {
		wg.Go(func() { r.forwardAll(ctx) })
	}
	err := r.ring.Run(ctx)
	srv.Close()
	wg.Wait()
	return err
}

// forwardAll sends queued notifications to their owners until ctx ends. A
// failed forward is logged and dropped: the owner is gone (its successor
// fetches every repository it wins) or busy (its resync catches up).
func (r *replica) forwardAll(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-r.forwards:
			if err := ring.Forward(ctx, r.client, f.to, r.token, f.n); err != nil {
				r.log.Warn("forward to the owner failed; its resync or successor catches up", "repository", f.n.Repository, "kind", f.n.Kind, "error", err)
			}
		}
	}
}

// leaveToRing drops from the app the repositories a live member of the ring
// owns, saying so on w, so that ferry sync run beside a serving ring never
// acts on an environment at the same time as its owner. It fails when no
// repository is left, or when the ring's members cannot be listed.
func (a *app) leaveToRing(ctx context.Context, w io.Writer) error {
	c := a.cfg.Coordination
	rest, err := restConfig(config.Cluster{Kubeconfig: c.Kubeconfig, Context: c.Context})
	if err != nil {
		return fmt.Errorf("coordination: home cluster: %w (--force syncs without asking the ring)", err)
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return fmt.Errorf("coordination: home cluster: %w (--force syncs without asking the ring)", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	members, err := ring.Snapshot(ctx, client, c.Namespace, c.Ring)
	if err != nil {
		return fmt.Errorf("coordination: %w (--force syncs without asking the ring)", err)
	}
	kept := a.repos[:0:0]
	for _, r := range a.repos {
		if owner, ok := ring.OwnerAmong(members, r.Name); ok {
			fmt.Fprintf(w, "repository %s: skipped, ferry serve's replica %s owns it (--force syncs it anyway)\n", r.Name, owner.Identity)
			continue
		}
		kept = append(kept, r)
	}
	if len(kept) == 0 {
		return fmt.Errorf("nothing to sync: the ring's %d live members own every repository; --force syncs them anyway, beside their owners", len(members))
	}
	a.repos = kept
	return nil
}
