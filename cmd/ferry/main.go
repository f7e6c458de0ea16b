// Command ferry is an event-driven GitOps reconciler for machine-learning model
// repositories. See README.md and docs/ for what each subcommand does.
package main

import (
	"context"
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
		os.Exit(1)
	}
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
	root.AddCommand(newVersionCommand(), newRenderCommand(), newServeCommand(), newSyncCommand(), newStatusCommand(), newValidateCommand(), newDiffCommand())
	return root.ExecuteContext(ctx)
}
