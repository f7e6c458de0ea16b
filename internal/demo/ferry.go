package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/object"
)

type envStatus = engine.Status

// startFerry runs `ferry serve --config examples/ferry.yaml` as a process,
// its log in examples/.demo/ferry.log, and waits until it answers.
func (d *demo) startFerry(ctx context.Context, r *repo) error {
	logFile, err := os.Create(d.logPath())
	if err != nil {
		return err
	}
	cmd := exec.Command(d.opts.Ferry, "serve", "--config", filepath.Join(d.opts.Root, "examples", "ferry.yaml"))
	cmd.Env = append(os.Environ(), secretEnv+"="+string(r.secret), "KUBECONFIG=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", d.opts.Ferry, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	d.onStop(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		if _, err := d.statuses(ctx); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("ferry serve exited: %v (its log: %s)", err, d.logPath())
		case <-deadline.C:
			return fmt.Errorf("ferry serve did not answer on %s within 30s", statusURL)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// statuses reads ferry's status API, as `ferry status` does, by environment.
func (d *demo) statuses(ctx context.Context) (map[string]envStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, statusURL+"/api/v1/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Environments []envStatus `json:"environments"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return nil, err
	}
	out := map[string]envStatus{}
	for _, s := range body.Environments {
		out[s.Environment] = s
	}
	return out, nil
}

// await follows ferry's status until done says the environments are where
// the story needs them, printing each environment's steps as they change and,
// when nothing changes for a while, what it still waits for.
func (d *demo) await(ctx context.Context, what string, limit time.Duration, done func(map[string]envStatus) bool) (map[string]envStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if d.last == nil {
		d.last = map[string]string{}
	}
	last := d.last
	quiet := time.Now()
	for {
		st, err := d.statuses(ctx)
		if err == nil {
			for _, env := range environments {
				for i, line := range describe(st[env]) {
					k := fmt.Sprintf("%s/%d", env, i)
					if line != "" && line != last[k] {
						last[k] = line
						quiet = time.Now()
						d.say("  %-8s %s", map[bool]string{true: env, false: ""}[i == 0], line)
					}
				}
			}
			if done(st) {
				return st, nil
			}
		}
		if time.Since(quiet) > 5*time.Second {
			quiet = time.Now()
			d.say("  … still waiting: %s", what)
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("%s: not done within %s", what, limit)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// describe is one environment's state in a few words: its phase, then what
// its tests and its promotion did (each printed when it changes).
func describe(s envStatus) [3]string {
	if s.Revision == "" {
		return [3]string{"waiting for its first reconcile"}
	}
	var models []string
	for _, m := range s.Models {
		models = append(models, m.Name+" "+m.Version)
	}
	var out [3]string
	out[0] = fmt.Sprintf("%s at %s (%s)", s.Phase, object.ShortSHA(s.Revision), strings.Join(models, ", "))
	switch s.Phase {
	case engine.Failed:
		out[0] += fmt.Sprintf(": %s failed: %s", s.FailedStep, s.LastError)
	case engine.Idle:
		out[0] += ", " + strings.ToLower(s.Health)
	}
	if s.Phase == engine.Idle && s.Verified != "" {
		var tests []string
		for _, t := range s.Tests {
			tests = append(tests, fmt.Sprintf("%s/%s %s in %s", t.Model, t.Test, map[bool]string{true: "passed", false: "failed"}[t.Passed], t.Duration.Round(100*time.Millisecond)))
		}
		if len(tests) > 0 {
			out[1] = "tests: " + strings.Join(tests, ", ")
		}
		for _, p := range s.Promotions {
			out[2] += fmt.Sprintf("promotion: %s %s → %s, branch %s %s", p.Model, p.Version, p.To, p.Branch, p.Action)
		}
	}
	return out
}
