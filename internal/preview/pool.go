package preview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// Options configures a Pool.
type Options struct {
	Repositories []Repository
	// Renderer may be the engine's: its cache is shared, and each build
	// waits for the one build slot only as long as its context allows.
	Renderer renderer
	// Workers bounds how many previews run at once; 0 means 2. They are the
	// pool's own: a preview never holds one of the engine's workers.
	Workers int
	// Delay coalesces the events of one pull request: its preview starts
	// Delay after the first event of a burst, at the newest head; 0 means
	// 200ms.
	Delay time.Duration
	// Timeout bounds one preview, posting included; 0 means 5m.
	Timeout time.Duration
	// Retries bounds how often a preview that failed for a reason worth
	// retrying (the fetch, GitHub answering 5xx) runs again, with backoff
	// (0.5 s doubling, at most 1 min); 0 means 5. Then an error status says
	// why.
	Retries int
	// Logger gets one Info record per preview posted; nil discards.
	Logger *slog.Logger
	// Registerer, when set, receives the pool's metrics.
	Registerer prometheus.Registerer
}

// Event is a pull request event, as the webhook receiver parsed it.
type Event struct {
	Repository string
	Number     int
	// Action is opened, synchronize, reopened, ready_for_review or closed;
	// others are ignored.
	Action  string
	BaseRef string
	// HeadSHA is the payload's. The preview fetches the head itself; this
	// only tells a new push (which cancels a running preview) from a repeat.
	HeadSHA string
	// Fork is set when the head lives in another repository (Target.Fork).
	Fork bool
}

// key is the unit of coalescing: one pull request of one repository.
type key struct {
	repo   string
	number int
}

func (k key) String() string { return k.repo + "#" + strconv.Itoa(k.number) }

// pull is what the pool knows of one pull request.
type pull struct {
	pending *Event // the newest event no worker has taken
	closed  bool
	running string // HeadSHA of the preview running, "" when none
	cancel  context.CancelCauseFunc
}

// Why a running preview is cancelled.
var (
	errClosed     = errors.New("the pull request was closed")
	errSuperseded = errors.New("a newer push arrived")
)

// Pool runs previews on workers of its own, one at a time per pull
// request, coalescing a burst of events into one preview at the newest head.
// It is safe for concurrent use.
type Pool struct {
	opts    Options
	log     *slog.Logger
	repos   map[string]*Repository
	queue   workqueue.TypedRateLimitingInterface[key]
	metrics *metrics

	mu    sync.Mutex
	pulls map[key]*pull
}

// New returns a Pool; Run starts it.
func New(opts Options) (*Pool, error) {
	if opts.Renderer == nil {
		return nil, errors.New("preview: Renderer is required")
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Delay <= 0 {
		opts.Delay = 200 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Retries <= 0 {
		opts.Retries = 5
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{opts: opts, log: opts.Logger, repos: map[string]*Repository{}, pulls: map[key]*pull{}}
	for i := range opts.Repositories {
		r := &opts.Repositories[i]
		if r.Name == "" || r.Source == nil {
			return nil, fmt.Errorf("preview: repository %q has no source", r.Name)
		}
		p.repos[r.Name] = r
	}
	var err error
	if p.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("preview: metrics: %w", err)
	}
	p.queue = workqueue.NewTypedRateLimitingQueueWithConfig[key](
		workqueue.NewTypedItemExponentialFailureRateLimiter[key](500*time.Millisecond, time.Minute),
		workqueue.TypedRateLimitingQueueConfig[key]{Name: "ferry-preview"},
	)
	return p, nil
}

// Notify hands the pool a pull request event; it never blocks. An opened,
// synchronize, reopened or ready_for_review event schedules a preview
// (drafts included), and one for a new head cancels the preview running for
// an older one; closed drops the pending preview and cancels the running
// one, so nothing is posted for it. Events of pull requests into another
// branch than the tracked one, and of repositories without GitHub, are
// taken and ignored. It returns false for a repository the pool does not
// track, or once it is stopping.
func (p *Pool) Notify(ev Event) bool {
	repo, ok := p.repos[ev.Repository]
	if !ok || p.queue.ShuttingDown() {
		return false
	}
	if repo.GitHub == nil || (ev.BaseRef != "" && ev.BaseRef != repo.Branch) || ev.Number <= 0 {
		return true
	}
	k := key{ev.Repository, ev.Number}
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.pulls[k]
	switch ev.Action {
	case "closed":
		if pr == nil {
			return true
		}
		pr.closed, pr.pending = true, nil
		if pr.cancel != nil {
			pr.cancel(errClosed)
		} else {
			delete(p.pulls, k)
		}
		return true
	case "opened", "synchronize", "reopened", "ready_for_review":
	default:
		return true
	}
	if pr == nil {
		pr = &pull{}
		p.pulls[k] = pr
	}
	pr.closed, pr.pending = false, &ev
	if pr.cancel != nil && pr.running != ev.HeadSHA {
		pr.cancel(errSuperseded)
	}
	p.queue.AddAfter(k, p.opts.Delay)
	return true
}

// Run starts the workers and blocks until ctx ends; then previews pending
// are dropped, those running are cancelled, and Run returns once the
// workers have stopped.
func (p *Pool) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range p.opts.Workers {
		wg.Go(func() {
			for p.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	p.queue.ShutDown()
	wg.Wait()
	return nil
}

// next runs one pull request's preview; false when the queue has shut down.
func (p *Pool) next(ctx context.Context) bool {
	k, quit := p.queue.Get()
	if quit {
		return false
	}
	defer p.queue.Done(k)
	p.mu.Lock()
	pr := p.pulls[k]
	if pr == nil || pr.closed || pr.pending == nil {
		p.mu.Unlock()
		p.queue.Forget(k)
		return true
	}
	ev := *pr.pending
	pr.pending = nil
	run, cancel := context.WithCancelCause(ctx)
	pr.running, pr.cancel = ev.HeadSHA, cancel
	p.mu.Unlock()

	err := p.preview(run, k, ev)
	cancel(nil)

	p.mu.Lock()
	pr.running, pr.cancel = "", nil
	again := errors.Is(err, errRetry) && !pr.closed && pr.pending == nil
	retry := again && p.queue.NumRequeues(k) < p.opts.Retries
	if retry {
		pr.pending = &ev
	} else if pr.pending == nil && p.pulls[k] == pr {
		delete(p.pulls, k)
	}
	p.mu.Unlock()

	switch {
	case retry:
		p.metrics.outcome("retried")
		p.queue.AddRateLimited(k)
		return true
	case again && ctx.Err() == nil:
		p.fail(ctx, k, ev, err)
	}
	p.queue.Forget(k)
	return true
}

// errRetry marks a preview failure worth another try.
var errRetry = errors.New("worth retrying")
