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
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/config"
	"github.com/ferry-gitops/ferry/internal/dashboard"
	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/httpserver"
	"github.com/ferry-gitops/ferry/internal/ring"
	"github.com/ferry-gitops/ferry/webhooks"
)

// configFlag is --config, which every command that reads ferry.yaml takes.
func configFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "config", "ferry.yaml", "path of ferry.yaml")
}

// newLogger returns the process's logger and routes client-go's klog into it.
func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, nil)
	case "json":
		h = slog.NewJSONHandler(w, nil)
	default:
		return nil, fmt.Errorf("--log-format %q: expected text or json", format)
	}
	log := slog.New(h)
	klog.SetSlogLogger(log)
	return log, nil
}

func newServeCommand() *cobra.Command {
	var cfgPath, logFormat string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run ferry: webhooks, resync, reconcile every environment, serve status and metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logFormat)
			if err != nil {
				return err
			}
			cfg, err := config.Load(cfgPath, os.Getenv)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, log)
		},
	}
	configFlag(cmd, &cfgPath)
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// serve runs until ctx ends (SIGTERM, SIGINT), a listener fails or the
// engine stops by itself: then it stops accepting requests, lets the engine
// finish what is in flight, leaves the ring if it is in one, and returns nil
// after a signal, else what stopped it.
//
// It listens twice: cfg.Listen is public and serves only GitHub's webhooks,
// /healthz and /readyz; cfg.AdminListen (loopback by default) serves what
// must not be public: /metrics, /api/v1/status, /debug/pprof/ and the
// dashboard at /.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	secrets, err := cfg.WebhookSecrets(os.Getenv)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var member *replica
	var holds []func(*apply.Options)
	if cfg.Coordination != nil {
		if member, err = newReplica(cfg.Coordination, os.Getenv, log); err != nil {
			return err
		}
		defer member.listener.Close()
		defer member.stop()
		holds = append(holds, member.holdAs)
	}
	a, err := build(cfg, forServe, holds...)
	if err != nil {
		return err
	}
	defer a.close()
	eng, err := a.engine(log, reg, false, func(o *engine.Options) {
		for _, s := range secrets {
			o.Secrets = append(o.Secrets, string(s))
		}
		if member != nil {
			o.Ring = member.ring
			o.Secrets = append(o.Secrets, member.token)
		}
	})
	if err != nil {
		return err
	}
	previews, err := a.previews(log, reg)
	if err != nil {
		return err
	}

	public := http.NewServeMux()
	public.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	public.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !eng.Ready() {
			http.Error(w, "not ready: the engine is not running", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	if len(secrets) > 0 {
		events := sink(eng, previews, log)
		if member != nil {
			events = member.route(events)
		}
		hook, err := webhooks.NewGitHub(webhooks.Options{
			Secrets:      secrets,
			Repositories: webhookRepositories(cfg),
			Sink:         events,
			Logger:       log,
			Registerer:   reg,
		})
		if err != nil {
			return err
		}
		public.Handle("/webhooks/github", hook)
	}
	admin := http.NewServeMux()
	admin.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles, for a replica that uses more memory or CPU than it should.
	admin.HandleFunc("GET /debug/pprof/", pprof.Index)
	admin.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	admin.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	admin.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		body := localStatus(eng.Status())
		if member != nil {
			body = member.status(r.Context(), eng.Status())
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	})
	// The dashboard reads the same statuses. Its event streams end with
	// done: before the servers' Shutdown, which would wait for them.
	done, finish := context.WithCancel(ctx)
	defer finish()
	dash, err := dashboard.New(dashboard.Options{Statuses: dashboard.FromEngine(eng), Done: done.Done(), Logger: log})
	if err != nil {
		return err
	}
	admin.Handle("/", dash)

	failed := make(chan error, 3) // a listener of the three that stopped serving
	servers, err := listen([]string{cfg.Listen, cfg.AdminListen}, []http.Handler{public, admin}, failed)
	if err != nil {
		return err
	}
	attrs := []any{"addr", servers[0].Addr, "admin", servers[1].Addr, "repositories", len(cfg.Repositories)}

	// The ring outlives the engine: a replica that shuts down finishes its
	// work in flight as a member, then leaves.
	ringCtx, leave := context.WithCancel(context.WithoutCancel(ctx))
	defer leave()
	left := make(chan error, 1)
	if member != nil {
		self := member.ring.Self().Identity
		attrs = append(attrs, "ring", member.listener.Addr().String(), "identity", self)
		handler := ring.Handler(member.token, self, accept(eng, previews, log), func() ([]byte, error) {
			return json.Marshal(member.ownStatus(eng.Status()))
		})
		go func() { left <- member.run(ringCtx, handler, failed) }()
	} else {
		left <- nil
	}
	log.Info("serving", attrs...)

	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	ran := make(chan error, 1)
	go func() { ran <- runBeside(engineCtx, eng.Run, previews.Run) }()

	var failure, runErr error
	engineDone := false
	select {
	case <-ctx.Done():
	case err := <-failed:
		failure = fmt.Errorf("http server: %w", err)
	case runErr = <-ran:
		engineDone = true
		failure = fmt.Errorf("the engine stopped by itself: %v", runErr)
	}
	log.Info("shutting down")
	finish()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("http shutdown", "addr", srv.Addr, "error", err)
		}
	}
	if !engineDone {
		stopEngine()
		runErr = <-ran
	}
	leave()
	if err := <-left; err != nil {
		log.Warn("leaving the ring", "error", err)
	}
	if failure != nil {
		return failure
	}
	return runErr
}

// listen starts a hardened server for each address and handler; each
// server's Addr is the address it got (a port of 0 is chosen by the system).
// failed receives a server's error should it stop serving; it must have room
// for one per server.
func listen(addrs []string, handlers []http.Handler, failed chan<- error) ([]*http.Server, error) {
	var servers []*http.Server
	for i, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, srv := range servers {
				srv.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		srv := httpserver.New(ln.Addr().String(), handlers[i], httpserver.Options{})
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("%s: %w", ln.Addr(), err)
			}
		}()
	}
	return servers, nil
}

// sink hands webhook events to the engine: a push asks for a fetch of its
// repository; a check or status event wakes environments waiting for
// required checks. Pull request events go to the preview pool. An event
// takes the path a member's forwarded one does (notification, then
// accept), so the owner does the same with either.
func sink(eng notifier, previews previewer, log *slog.Logger) func(webhooks.Event) bool {
	deliver := accept(eng, previews, log)
	return func(ev webhooks.Event) bool {
		n, _, ok := notification(ev)
		if !ok {
			return true
		}
		return deliver(n)
	}
}
