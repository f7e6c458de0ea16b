// Command ferry is an event-driven GitOps reconciler for machine-learning model
// repositories. See README.md and docs/ for what each subcommand does.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", err)
		os.Exit(exitCode(err))
	}
}

// exitError carries the exit code of a command whose codes mean something
// (ferry diff: 1 when the cluster differs, 2 on an error).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is 1 for an error, or the code an exitError carries.
func exitCode(err error) int {
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	return 1
}

// run executes one ferry command line. It is main without the process: tests
// call it with their own arguments and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "GitOps for machine-learning models",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newVersionCommand(), newRenderCommand(), newServeCommand(), newSyncCommand(), newStatusCommand(), newValidateCommand(), newDiffCommand(), newPromoteCommand(), newPreviewCommand())
	return root.ExecuteContext(ctx)
}
