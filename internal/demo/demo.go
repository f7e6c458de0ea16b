// Package demo plays Ferry's whole story on this machine, with real parts and
// no accounts: three kwok clusters (dev, staging, prod), a local Git server,
// `ferry serve` as a process configured by examples/ferry.yaml as written,
// and a model pushed to dev that passes its tests and travels to prod through
// promotion branches a stand-in reviewer merges. It prints a timeline a
// person can follow, every line with its elapsed time.
//
// hack/demo runs it (make demo, make demo-down); its test runs it end to end.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options says where the demo runs from.
type Options struct {
	// Root is the top of the ferry repository: examples/ is read from it,
	// and the demo's state lives in examples/.demo.
	Root string
	// Ferry is the ferry binary to run.
	Ferry string
	// Out receives the timeline.
	Out io.Writer
	// Timeout bounds the whole run; 0 means 5 minutes.
	Timeout time.Duration
}

// The demo's fixed parts, as examples/ferry.yaml names them.
const (
	gitAddr     = "127.0.0.1:18480"
	hookURL     = "http://127.0.0.1:18080/webhooks/github"
	statusURL   = "http://127.0.0.1:18081"
	repoName    = "ml-models"
	secretEnv   = "FERRY_DEMO_WEBHOOK_SECRET"
	clusterName = "ferry-demo-"
)

// environments are the demo's, in promotion order.
var environments = [...]string{"dev", "staging", "prod"}

// state is where a run keeps its files: examples/.demo.
func (o Options) state() string { return filepath.Join(o.Root, "examples", ".demo") }

// Result is what a run leaves behind, for its test.
type Result struct {
	// Final is the status of each environment at the end.
	Final map[string]envStatus
	// Branches are the promotion branches the story merged.
	Branches []string
	// Kubeconfig holds contexts dev, staging and prod.
	Kubeconfig string
	// GitDir holds the model repository's bare clone.
	GitDir string
}

// Up deletes what a previous run left, then plays the story. It leaves the
// clusters running; ferry serve and the Git server stop when it returns.
func Up(ctx context.Context, opts Options) (*Result, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	d := &demo{opts: opts, start: time.Now(), out: opts.Out}
	defer d.stop()
	res, err := d.run(ctx)
	if err != nil {
		d.say("demo failed at %q: %v", d.step, err)
		d.say("ferry's log: %s", d.logPath())
		if d.kubeconfig != "" {
			d.say("the clusters: export KUBECONFIG=%s (contexts dev, staging, prod); make demo-down deletes them", d.kubeconfig)
		}
		return nil, fmt.Errorf("demo: %s: %w", d.step, err)
	}
	return res, nil
}

// Down deletes the demo's clusters and state.
func Down(ctx context.Context, opts Options) error {
	var errs []error
	for _, env := range environments {
		if err := deleteCluster(ctx, opts.state(), env); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(opts.state()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// demo is one run.
type demo struct {
	opts  Options
	start time.Time
	out   io.Writer
	step  string

	mu         sync.Mutex // guards out
	kubeconfig string
	stops      []func()
	last       map[string]string // what await last said of each environment
}

// say prints one timeline line.
func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "[%6.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

// begin names the step the demo is at, for a failure to name it.
func (d *demo) begin(step string) {
	d.step = step
	d.say("%s", step)
}

func (d *demo) logPath() string { return filepath.Join(d.opts.state(), "ferry.log") }

// onStop registers what the end of the run stops, last first.
func (d *demo) onStop(f func()) { d.stops = append(d.stops, f) }

func (d *demo) stop() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
}
