package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/config"
	"github.com/ferry-gitops/ferry/internal/httpserver"
	"github.com/ferry-gitops/ferry/internal/ring"
	"github.com/ferry-gitops/ferry/webhooks"
)

// replica is ferry serve's place in a ring of replicas (coordination in
// ferry.yaml): its member Lease, the listener the other members reach it on,
// the token they share, and the forwarding of webhooks to their owners.
type replica struct {
	ring     *ring.Ring
	token    string
	listener net.Listener
	client   *http.Client
	forwards *forwarder
	stop     context.CancelFunc // ends the forwarder
	log      *slog.Logger
}

// homeClient reaches the ring's home cluster: coordination's kubeconfig and
// context, else $KUBECONFIG and ~/.kube/config, else in-cluster.
func homeClient(c *config.Coordination) (kubernetes.Interface, error) {
	rest, err := restConfig(config.Cluster{Kubeconfig: c.Kubeconfig, Context: c.Context})
	if err != nil {
		return nil, fmt.Errorf("coordination: home cluster: %w", err)
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("coordination: home cluster: %w", err)
	}
	return client, nil
}

// ringToken is the ring's shared token, from coordination.tokenEnv.
func ringToken(c *config.Coordination, getenv func(string) string) (string, error) {
	token := getenv(c.TokenEnv)
	if token == "" {
		return "", fmt.Errorf("coordination.tokenEnv: $%s is empty; set it to the token every replica shares (from one Secret)", c.TokenEnv)
	}
	return token, nil
}

// newReplica prepares this replica's membership: the home cluster's client,
// the ring listener (bound now, so that its address can be advertised) and
// the Ring, which joins when run runs.
func newReplica(c *config.Coordination, getenv func(string) string, log *slog.Logger) (*replica, error) {
	token, err := ringToken(c, getenv)
	if err != nil {
		return nil, err
	}
	client, err := homeClient(c)
	if err != nil {
		return nil, err
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
		Client: client, Namespace: c.Namespace, Name: c.Ring, Address: address, Token: token,
		LeaseDuration: c.LeaseDurationValue(), Logger: log,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("coordination: %w", err)
	}
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	ctx, stop := context.WithCancel(context.Background())
	return &replica{
		ring: r, token: token, listener: ln, client: httpClient, log: log, stop: stop,
		forwards: newForwarder(ctx, httpClient, token, log),
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

// holdAs makes every applier hold its inventories as this replica, and
// ignore the hold of a member the ring saw leave (a Lease gone for a lease
// duration: it stopped). Any other hold, a ferry sync's or an unknown
// identity's, is honoured until its deadline.
func (r *replica) holdAs(o *apply.Options) {
	o.Identity = r.ring.Self().Identity
	o.HolderAlive = func(identity string) bool { return !r.ring.Departed(identity) }
}

// cliIdentity names a command's holds (ferry sync): unique to the process,
// so it never passes for a serving replica's, even one on the same host.
func cliIdentity() string {
	host, _ := os.Hostname()
	return "ferry-cli-" + host + "-" + strconv.Itoa(os.Getpid())
}

// route hands an event for a repository another live member owns to that
// member, and every other event to local. Before this replica has seen the
// ring it refuses the event (503): the engine would drop it.
func (r *replica) route(local func(webhooks.Event) bool) func(webhooks.Event) bool {
	self := r.ring.Self().Identity
	return func(ev webhooks.Event) bool {
		owner, ok := r.ring.Owner(ev.Repository)
		switch {
		case !ok:
			r.log.Warn("webhook refused: this replica has not seen the ring yet", "repository", ev.Repository)
			return false
		case owner.Identity == self:
			return local(ev)
		}
		n, k, ok := notification(ev)
		if !ok {
			return local(ev)
		}
		return r.forwards.add(owner, n, k)
	}
}

// run serves the ring listener, holds the Lease and forwards notifications
// until ctx ends; then it leaves the ring (deleting its Lease, so the others
// take over at once) and returns once all of it has stopped. A failure of the
// listener is sent to failed: a member no one can reach must not stay one.
func (r *replica) run(ctx context.Context, handler http.Handler, failed chan<- error) error {
	srv := httpserver.New(r.listener.Addr().String(), handler, httpserver.Options{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(r.listener); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("ring listener %s: %w", r.listener.Addr(), err)
		}
	})
	err := r.ring.Run(ctx)
	srv.Close()
	r.stop()
	r.forwards.wait()
	wg.Wait()
	return err
}

// skipRingOwned drops from the app the repositories a live member of the
// ring owns, saying so on w, so that ferry sync run beside a serving ring
// never acts on an environment at the same time as its owner. It fails when
// no repository is left, or when the ring's members cannot be listed.
func (a *app) skipRingOwned(ctx context.Context, w io.Writer) error {
	c := a.cfg.Coordination
	token, err := ringToken(c, os.Getenv)
	if err != nil {
		return fmt.Errorf("%w (--force syncs without asking the ring)", err)
	}
	client, err := homeClient(c)
	if err != nil {
		return fmt.Errorf("%w (--force syncs without asking the ring)", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	members, err := ring.Snapshot(ctx, client, c.Namespace, c.Ring, token)
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
