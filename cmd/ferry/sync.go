package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/object"
)

func newSyncCommand() *cobra.Command {
	var cfgPath, env, logFormat string
	var allowMassDelete, force bool
	var timeout, every time.Duration
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Reconcile every environment once, in the foreground; exit 0 only if all are healthy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logFormat)
			if err != nil {
				return err
			}
			a, err := loadApp(cfgPath, forCLI)
			if err != nil {
				return err
			}
			defer a.close()
			if a.cfg.Coordination != nil && !force {
				if err := a.skipRingOwned(cmd.Context(), cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			eng, err := a.engine(log, nil, allowMassDelete, func(o *engine.Options) { o.ProgressEvery = every })
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			stopProgress := reportProgress(ctx, cmd.ErrOrStderr(), eng, every)
			statuses, err := eng.SyncOnce(ctx, env)
			stopProgress()
			printStatus(cmd.OutOrStdout(), localStatus(statuses).Environments)
			switch {
			case errors.Is(ctx.Err(), context.DeadlineExceeded):
				return fmt.Errorf("gave up after %s (--timeout); where each environment stood is above", timeout)
			case err != nil:
				return errors.New("not every environment is healthy (details above and in the log)")
			}
			return nil
		},
	}
	configFlag(cmd, &cfgPath)
	cmd.Flags().StringVar(&env, "env", "", "reconcile only this environment")
	cmd.Flags().BoolVar(&allowMassDelete, "allow-mass-delete", false, "confirm a prune of more than half of an environment")
	cmd.Flags().BoolVar(&force, "force", false, "sync even the repositories a live replica of ferry serve owns (coordination in ferry.yaml)")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "give up after this long")
	cmd.Flags().DurationVar(&every, "progress-every", 5*time.Second, "how often to say what sync still waits for, and why")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// reportProgress says, every few seconds, what each environment in a long
// step still waits for and why, until the returned func is called.
func reportProgress(ctx context.Context, w io.Writer, eng *engine.Engine, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, s := range eng.Status() {
				if s.Phase == engine.Idle || s.Phase == engine.Failed {
					continue
				}
				line := fmt.Sprintf("waiting for %s/%s: %s", s.Repository, s.Environment, s.Phase)
				if s.Waiting != "" {
					line += ": " + s.Waiting
				}
				fmt.Fprintln(w, line)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// printStatus writes the table `ferry sync` and `ferry status` show, with an
// OWNER column when the statuses come from a ring of replicas.
func printStatus(w io.Writer, statuses []environmentStatus) {
	owners := slices.ContainsFunc(statuses, func(s environmentStatus) bool { return s.Owner != "" })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "REPOSITORY\tENVIRONMENT\tREVISION\tPHASE\tHEALTH\tLAST CHANGE\tLAST ERROR"
	if owners {
		header = "REPOSITORY\tENVIRONMENT\tOWNER\tREVISION\tPHASE\tHEALTH\tLAST CHANGE\tLAST ERROR"
	}
	fmt.Fprintln(tw, header)
	for _, s := range statuses {
		change := "-"
		if !s.LastChange.IsZero() {
			change = s.LastChange.Format(time.RFC3339)
		}
		lastErr := s.LastError
		if lastErr == "" {
			lastErr = "-"
		}
		phase := string(s.Phase)
		switch {
		case s.OwnerUnreachable:
			phase, lastErr = "?", "its owner did not answer"
		case s.Phase == engine.Failed && s.FailedStep != "":
			phase += " (" + string(s.FailedStep) + ")"
		}
		cells := []string{s.Repository, s.Environment, shortSHA(s.Revision), phase, orDash(s.Health), change, oneLine(lastErr)}
		if owners {
			cells = slices.Insert(cells, 2, orDash(s.Owner))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func shortSHA(s string) string {
	if s == "" {
		return "-"
	}
	return object.ShortSHA(s)
}

// oneLine keeps a table row on one line; the full error is in the JSON status.
func oneLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
