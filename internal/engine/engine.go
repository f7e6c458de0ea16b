package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"k8s.io/client-go/util/workqueue"

	"github.com/ferry-gitops/ferry/apply"
)

// Repository is a tracked repository and its environments, ready to use.
type Repository struct {
	Name   string
	Source gitRepo
	// Branch is the tracked branch: promotion pull requests merge into it.
	Branch string
	// GitHub, when set, receives commit statuses and promotion pull
	// requests and answers required checks. Leave it nil (not a typed nil
	// pointer) for a repository without GitHub.
	GitHub       forge
	Environments []Environment
}

// How an environment promotes into the next one.
const (
	// PromotePullRequest pushes a branch and opens a pull request (default).
	PromotePullRequest = "pull-request"
	// PromoteBranch pushes the branch only; no GitHub call is made.
	PromoteBranch = "branch"
)

// Environment is one environment and the cluster it runs in.
type Environment struct {
	Name string
	// Path is the environment directory inside the repository.
	Path    string
	Applier applier
	// PromoteTo is the environment this one promotes into once it passed; "" for none.
	PromoteTo string
	// Promotion is PromotePullRequest ("" means it) or PromoteBranch.
	Promotion string
	// Policy is what the environment may write, passed into every apply
	// (apply.Request.Policy); nil checks only what is always refused.
	Policy *apply.Policy
}

// PinFile is the file of an environment directory that holds its version
// pins, and the only file a promotion edits.
const PinFile = "models.yaml"

// Options configures an Engine.
type Options struct {
	Repositories []Repository
	Renderer     renderer
	// Resync is a robfig/cron spec for fetch and drift checks; "" turns it off.
	Resync string
	// Workers is the main queue's workers (resync fetches and drift
	// checks); 0 means 16. Pushes have 4 more of their own (lanes.go), so
	// up to Workers+4 environments render and apply at once. The steps after
	// apply (health, tests, checks, promotion) do not hold a worker.
	Workers int
	// HealthTimeout bounds the wait for health after an apply; 0 means 5m.
	HealthTimeout time.Duration
	// ProgressEvery is how often a health wait updates Status.Waiting; 0
	// means 5s.
	ProgressEvery time.Duration
	// TestGrace is added to the longest test's timeout to bound a test run;
	// 0 means 1m.
	TestGrace time.Duration
	// ChecksTimeout bounds how long pending required checks are waited for;
	// 0 means 30m. They are read again on each check webhook, on resync and
	// every ChecksPoll (0 means 1m).
	ChecksTimeout time.Duration
	ChecksPoll    time.Duration
	// ResyncSpread bounds how far apart a resync spreads the fetches of its
	// repositories (30 ms per repository, at most this); 0 means 30s. The
	// drift checks that follow each fetch are spread with it: on two cores a
	// thousand repositories' three environments take about half a minute of
	// CPU, which a push should not queue behind (it has a lane of its own).
	ResyncSpread time.Duration
	// FetchTimeout bounds resolving a repository's head, fetch included; 0 means 2m.
	FetchTimeout time.Duration
	// ApplyTimeout bounds rendering and applying one environment; 0 means 10m.
	ApplyTimeout time.Duration
	// PromoteTimeout bounds one attempt at promoting an environment; 0 means 5m.
	PromoteTimeout time.Duration
	// FetchDelay coalesces a burst of pushes into one fetch; 0 means 10ms.
	FetchDelay time.Duration
	// ShutdownGrace bounds how long work in flight may finish after the
	// engine is told to stop; 0 means 30s.
	ShutdownGrace time.Duration
	// StatusURL, when set, is the link commit statuses carry (a dashboard).
	StatusURL string
	// Secrets are values (tokens, the webhook secret) that must never show:
	// every error the engine puts in a status, a commit status or its log
	// has them replaced by [redacted], whichever part produced it.
	Secrets []string
	// Ring, when set, shares the repositories among replicas: this engine
	// fetches, reconciles and promotes only those the ring says it owns, not
	// before it may mutate them (a repository taken over waits one lease
	// duration), and everything it does runs under the ring's fence, so it
	// stops before its membership could lapse. Nil: one replica owns all.
	Ring ring
	// AllowMassDelete confirms prunes the mass-delete guard would refuse
	// (ferry sync --allow-mass-delete); never set by ferry serve.
	AllowMassDelete bool
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
}

// keyKind tells what a work item asks for.
type keyKind int

const (
	fetchKey     keyKind = iota // fetch a repository
	reconcileKey                // reconcile one environment
	statusKey                   // post an environment's commit statuses
)

// key is a work item.
type key struct {
	kind      keyKind
	repo, env string
}

func (k key) String() string {
	if k.env == "" {
		return k.repo
	}
	return k.repo + "/" + k.env
}

// Engine keeps every environment of every repository equal to Git, and
// carries each verified model to the next environment.
type Engine struct {
	opts    Options
	log     *slog.Logger
	queue   workqueue.TypedRateLimitingInterface[key] // fetches and reconciles
	urgent  workqueue.TypedRateLimitingInterface[key] // those a push asked for (next)
	busyMu  sync.Mutex
	busy    map[key]bool                              // items in process, from either lane
	github  workqueue.TypedRateLimitingInterface[key] // commit statuses
	metrics *metrics
	repos   map[string]*repoState
	order   []key // environments, for a stable status order

	changes   hub
	running   atomic.Bool
	pipeCtx   context.Context // parent of the steps after apply, set by Run
	pipelines sync.WaitGroup

	ownedMu sync.Mutex
	owned   map[string]bool // repositories this replica owned at the last ring change
}

type repoState struct {
	spec Repository
	envs map[string]*envState

	mu      sync.Mutex
	head    string
	fetched bool
	err     string
	pushed  bool // a push was signalled: fetch without asking whether the branch moved

	statusesOff atomic.Bool // the repository has no GitHub: said once in the log
}

func (rs *repoState) currentHead() string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.head
}

// New returns an Engine; Run starts it.
func New(opts Options) (*Engine, error) {
	if opts.Renderer == nil {
		return nil, errors.New("engine: Renderer is required")
	}
	defaults(&opts)
	e := &Engine{opts: opts, log: opts.Logger, repos: map[string]*repoState{}, pipeCtx: context.Background(), owned: map[string]bool{}, busy: map[key]bool{}}
	// The two lanes share one backoff per item: an environment failing
	// from both is retried on one schedule, and a success in either lane
	// resets it.
	lanes := newLimiter()
	e.queue = newQueue("ferry", lanes)
	e.urgent = newQueue("ferry-urgent", lanes)
	e.github = newQueue("ferry-github", newLimiter())
	var err error
	if e.metrics, err = newMetrics(opts.Registerer, func() float64 { return float64(e.queue.Len() + e.urgent.Len()) }, e.infoSeries); err != nil {
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
			k := EnvironmentKey{r.Name, env.Name}
			rs.envs[env.Name] = newEnvState(rs, env, func() { e.changes.publish(k) })
			e.order = append(e.order, key{reconcileKey, r.Name, env.Name})
		}
		for _, env := range r.Environments {
			if env.PromoteTo != "" && rs.envs[env.PromoteTo] == nil {
				return nil, fmt.Errorf("engine: %s/%s promotes to %q, which is not an environment of the repository", r.Name, env.Name, env.PromoteTo)
			}
		}
		e.repos[r.Name] = rs
	}
	return e, nil
}

func defaults(o *Options) {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	set(&o.HealthTimeout, 5*time.Minute)
	set(&o.ProgressEvery, 5*time.Second)
	set(&o.TestGrace, time.Minute)
	set(&o.ChecksTimeout, 30*time.Minute)
	set(&o.ChecksPoll, time.Minute)
	set(&o.FetchTimeout, 2*time.Minute)
	set(&o.ResyncSpread, 30*time.Second)
	set(&o.ApplyTimeout, 10*time.Minute)
	set(&o.PromoteTimeout, 5*time.Minute)
	set(&o.FetchDelay, 10*time.Millisecond)
	set(&o.ShutdownGrace, 30*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func newQueue(name string, limiter workqueue.TypedRateLimiter[key]) workqueue.TypedRateLimitingInterface[key] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[key]{Name: name})
}

// newLimiter is the backoff of failed items: exponential from 500 ms to 5
// minutes, jittered.
func newLimiter() workqueue.TypedRateLimiter[key] {
	return &jitter[key]{workqueue.NewTypedItemExponentialFailureRateLimiter[key](500*time.Millisecond, 5*time.Minute)}
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
	e.urgent.AddAfter(key{fetchKey, repo, ""}, e.opts.FetchDelay)
	return true
}

// NotifyChecks says that a check or commit status of the repository changed
// (a check_run or status webhook): environments waiting for required checks
// read them again. It never blocks; false for a repository the engine does
// not track.
func (e *Engine) NotifyChecks(repo string) bool {
	rs, ok := e.repos[repo]
	if !ok {
		return false
	}
	for _, es := range rs.envs {
		es.signalChecks()
	}
	return true
}

// Resync asks for a fetch of every repository and a drift check of every
// environment, even when Git did not change; it also wakes environments
// waiting for required checks.
//
// The fetches are spread over ResyncSpread (each repository at an offset of
// its own), so a thousand repositories do not ask their Git servers at once.
func (e *Engine) Resync() {
	spread := min(e.opts.ResyncSpread, time.Duration(len(e.repos))*30*time.Millisecond)
	for name, rs := range e.repos {
		for _, es := range rs.envs {
			es.mu.Lock()
			es.drift = true
			es.mu.Unlock()
			es.signalChecks()
		}
		e.queue.AddAfter(key{fetchKey, name, ""}, offset(name, spread))
	}
}

// offset places name in [0, spread), the same each time.
func offset(name string, spread time.Duration) time.Duration {
	if spread <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(spread))
}

// Ready reports whether the engine is running and can take work. One
// repository whose Git server does not answer does not make it unready: that
// shows in the repository's status and metrics, while webhooks for the others
// keep flowing.
func (e *Engine) Ready() bool {
	return e.running.Load() && !e.queue.ShuttingDown()
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

	e.pipeCtx = work
	var wg sync.WaitGroup
	for range e.opts.Workers {
		wg.Go(func() {
			for e.next(work, e.queue) {
			}
		})
	}
	for range urgentWorkers {
		wg.Go(func() {
			for e.next(work, e.urgent) {
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for e.nextStatus(work) {
			}
		})
	}
	e.running.Store(true)
	wg.Go(func() { e.followRing(ctx) })
	e.Resync()

	<-ctx.Done()
	e.running.Store(false)
	if c != nil {
		<-c.Stop().Done()
	}
	e.queue.ShutDownWithDrain()
	e.urgent.ShutDownWithDrain()
	e.github.ShutDownWithDrain()
	// ShutDownWithDrain is the plain queue's: it leaves the delaying
	// queue's loop (and its heartbeat ticker) running for ever. ShutDown
	// after it stops them.
	e.queue.ShutDown()
	e.urgent.ShutDown()
	e.github.ShutDown()
	done := make(chan struct{})
	go func() { wg.Wait(); e.pipelines.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e.opts.ShutdownGrace):
		cancelWork()
		<-done
	}
	return nil
}

// scrub replaces every configured secret in s by [redacted].
func (e *Engine) scrub(s string) string {
	for _, secret := range e.opts.Secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// inventory names an environment's inventory in its cluster.
func (es *envState) inventory() apply.Inventory {
	return apply.Inventory{Repository: es.repo.spec.Name, Environment: es.spec.Name}
}
