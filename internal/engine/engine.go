package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"k8s.io/client-go/util/workqueue"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

// Repository is a tracked repository and its environments, ready to use.
type Repository struct {
	Name         string
	Source       *source.Repository
	Environments []Environment
}

// Environment is one environment and the applier of its cluster.
type Environment struct {
	Name string
	// Path is the environment directory inside the repository.
	Path    string
	Applier *apply.Applier
}

// Applied is what the engine hands to the Verifier once an environment is healthy.
type Applied struct {
	Repository, Environment, Revision string
	Result                            *render.Result
	Health                            *apply.HealthReport
}

// Verifier runs an environment's tests and promotion once it is healthy. A
// nil Verifier does nothing (until the promote work fills it in).
type Verifier interface {
	Verify(ctx context.Context, a Applied) error
}

// Options configures an Engine.
type Options struct {
	Repositories []Repository
	Renderer     *render.Renderer
	// Resync is a robfig/cron spec for fetch and drift checks; "" turns it off.
	Resync string
	// Workers bounds how many environments render and apply at once; 0
	// means 4. Health waits do not hold a worker.
	Workers int
	// HealthTimeout bounds the wait for health after an apply; 0 means 5m.
	HealthTimeout time.Duration
	// FetchTimeout bounds resolving a repository's head, fetch included; 0 means 2m.
	FetchTimeout time.Duration
	// ApplyTimeout bounds rendering and applying one environment; 0 means 10m.
	ApplyTimeout time.Duration
	// FetchDelay coalesces a burst of pushes into one fetch; 0 means 10ms.
	FetchDelay time.Duration
	// ShutdownGrace bounds how long work in flight may finish after the
	// engine is told to stop; 0 means 30s.
	ShutdownGrace time.Duration
	Verifier      Verifier
	// AllowMassDelete confirms prunes the mass-delete guard would refuse
	// (ferry sync --allow-mass-delete); never set by ferry serve.
	AllowMassDelete bool
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
}

// key is a work item: a fetch of a repository (env empty) or a reconcile of
// one of its environments.
type key struct{ repo, env string }

func (k key) String() string {
	if k.env == "" {
		return k.repo
	}
	return k.repo + "/" + k.env
}

// Engine keeps every environment of every repository equal to Git.
type Engine struct {
	opts    Options
	log     *slog.Logger
	queue   workqueue.TypedRateLimitingInterface[key]
	metrics *metrics
	repos   map[string]*repoState
	order   []key // environments, for a stable status order

	waitCtx context.Context // parent of health waits, set by Run
	waits   sync.WaitGroup
}

type repoState struct {
	spec Repository
	envs map[string]*envState

	mu      sync.Mutex
	head    string
	fetched bool
	err     string
	pushed  bool // a push was signalled: fetch without asking whether the branch moved
}

type envState struct {
	repo *repoState
	spec Environment

	mu       sync.Mutex
	status   Status
	applied  string          // the revision last reconciled successfully
	restored bool            // applied was read back from the cluster
	inputs   map[string]bool // the last render's input set
	failedAt string          // a commit whose failure was bad input: not retried
	drift    bool            // a resync asked for a drift check

	gen        uint64             // counts reconciles that reached render; only the newest may record
	cancelWait context.CancelFunc // cancels the pending health wait
}

// New returns an Engine; Run starts it.
func New(opts Options) (*Engine, error) {
	if opts.Renderer == nil {
		return nil, errors.New("engine: Renderer is required")
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = 5 * time.Minute
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 2 * time.Minute
	}
	if opts.ApplyTimeout <= 0 {
		opts.ApplyTimeout = 10 * time.Minute
	}
	if opts.FetchDelay <= 0 {
		opts.FetchDelay = 10 * time.Millisecond
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{opts: opts, log: opts.Logger, repos: map[string]*repoState{}}
	e.queue = workqueue.NewTypedRateLimitingQueueWithConfig[key](
		&jitter[key]{workqueue.NewTypedItemExponentialFailureRateLimiter[key](500*time.Millisecond, 5*time.Minute)},
		workqueue.TypedRateLimitingQueueConfig[key]{Name: "ferry"},
	)
	var err error
	if e.metrics, err = newMetrics(opts.Registerer, func() float64 { return float64(e.queue.Len()) }); err != nil {
		return nil, fmt.Errorf("engine: metrics: %w", err)
	}
	for _, r := range opts.Repositories {
		if r.Source == nil || r.Name == "" {
			return nil, fmt.Errorf("engine: repository %q has no source", r.Name)
		}
		rs := &repoState{spec: r, envs: map[string]*envState{}}
		for _, env := range r.Environments {
			if env.Applier == nil {
				return nil, fmt.Errorf("engine: %s/%s has no cluster", r.Name, env.Name)
			}
			rs.envs[env.Name] = &envState{repo: rs, spec: env, status: Status{
				Repository: r.Name, Environment: env.Name, Phase: Idle, Health: HealthUnknown,
			}}
			e.order = append(e.order, key{r.Name, env.Name})
			e.metrics.setInfo(r.Name, env.Name, "", Idle)
		}
		e.repos[r.Name] = rs
	}
	return e, nil
}

// Notify asks for a fetch of the repository, as a push webhook does. It never
// blocks; a burst of notifications leads to one fetch. It returns false for a
// repository the engine does not track, or once the engine is stopping.
func (e *Engine) Notify(repo string) bool {
	rs, ok := e.repos[repo]
	if !ok || e.queue.ShuttingDown() {
		return false
	}
	rs.mu.Lock()
	rs.pushed = true
	rs.mu.Unlock()
	e.queue.AddAfter(key{repo: repo}, e.opts.FetchDelay)
	return true
}

// Resync asks for a fetch of every repository and a drift check of every
// environment, even when Git did not change.
func (e *Engine) Resync() {
	for name, rs := range e.repos {
		for _, es := range rs.envs {
			es.mu.Lock()
			es.drift = true
			es.mu.Unlock()
		}
		e.queue.Add(key{repo: name})
	}
}

// Ready reports whether every repository has been fetched once.
func (e *Engine) Ready() bool {
	for _, rs := range e.repos {
		rs.mu.Lock()
		fetched := rs.fetched
		rs.mu.Unlock()
		if !fetched {
			return false
		}
	}
	return true
}

// Status returns every environment's status, in configuration order.
func (e *Engine) Status() []Status {
	out := make([]Status, 0, len(e.order))
	for _, k := range e.order {
		es := e.repos[k.repo].envs[k.env]
		es.mu.Lock()
		out = append(out, es.status.clone())
		es.mu.Unlock()
	}
	return out
}

// Run starts the workers and the resync, fetches every repository once, and
// blocks until ctx ends. Then it stops taking work, lets what is in flight
// finish (bounded by ShutdownGrace) and returns.
func (e *Engine) Run(ctx context.Context) error {
	var c *cron.Cron
	if e.opts.Resync != "" {
		c = cron.New()
		if _, err := c.AddFunc(e.opts.Resync, e.Resync); err != nil {
			return fmt.Errorf("engine: resync %q: %w", e.opts.Resync, err)
		}
		c.Start()
	}
	// Work in flight outlives ctx by the grace period, so an apply is not cut
	// in half by a SIGTERM.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	e.waitCtx = work
	var wg sync.WaitGroup
	for range e.opts.Workers {
		wg.Go(func() {
			for e.next(work) {
			}
		})
	}
	e.Resync()

	<-ctx.Done()
	if c != nil {
		<-c.Stop().Done()
	}
	e.queue.ShutDownWithDrain()
	done := make(chan struct{})
	go func() { wg.Wait(); e.waits.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e.opts.ShutdownGrace):
		cancelWork()
		<-done
	}
	return nil
}

// next processes one work item; false when the queue has shut down.
func (e *Engine) next(ctx context.Context) bool {
	k, quit := e.queue.Get()
	if quit {
		return false
	}
	defer e.queue.Done(k)
	var err error
	if k.env == "" {
		var envs []string
		envs, err = e.fetch(ctx, k.repo)
		for _, env := range envs {
			e.queue.Add(key{k.repo, env})
		}
	} else {
		err = e.reconcile(ctx, e.repos[k.repo].envs[k.env], false)
	}
	if retry := (*retryError)(nil); errors.As(err, &retry) && !e.queue.ShuttingDown() {
		e.queue.AddRateLimited(k)
		return true
	}
	e.queue.Forget(k)
	return true
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
	d := j.TypedRateLimiter.When(item)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// SyncOnce fetches each repository and reconciles each environment (all, or
// only those named env) in the foreground, rendering, applying and waiting
// even when nothing changed. It returns the statuses and an error unless every
// environment is healthy: the mode for CI.
func (e *Engine) SyncOnce(ctx context.Context, env string) ([]Status, error) {
	var errs []error
	var out []Status
	names := make([]string, 0, len(e.repos))
	for n := range e.repos {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		rs := e.repos[name]
		if _, err := e.fetch(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, spec := range rs.spec.Environments {
			if env != "" && spec.Name != env {
				continue
			}
			es := rs.envs[spec.Name]
			if err := e.reconcile(ctx, es, true); err != nil {
				errs = append(errs, err)
			}
			es.mu.Lock()
			out = append(out, es.status.clone())
			es.mu.Unlock()
		}
	}
	return out, errors.Join(errs...)
}
