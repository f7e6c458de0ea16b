package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferry-gitops/ferry/internal/engine"
)

func newPromoteCommand() *cobra.Command {
	var cfgPath, logFormat string
	var req engine.PromoteRequest
	cmd := &cobra.Command{
		Use:   "promote --model M --from E [--to T] [--force]",
		Short: "Promote a model once: write its pin into the next environment on a branch and open or update the pull request",
		Long: "Promote runs the promote step of the pipeline once. Without --force it promotes the commit the\n" +
			"source environment was last verified at, as its cluster's inventory says, and refuses when that\n" +
			"verification failed. With --force it promotes Git's head and needs no cluster: the pull request's\n" +
			"diff is Git against Git.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.From == "" {
				return errors.New("--from is required: the environment the model passed in")
			}
			log, err := newLogger(cmd.ErrOrStderr(), logFormat)
			if err != nil {
				return err
			}
			a, err := loadApp(cfgPath, forCLI)
			if err != nil {
				return err
			}
			defer a.close()
			eng, err := a.engine(log, nil, false)
			if err != nil {
				return err
			}
			promotions, err := eng.Promote(cmd.Context(), req)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MODEL\tVERSION\tTO\tBRANCH\tACTION\tPULL REQUEST")
			for _, p := range promotions {
				pr := "-"
				if p.PR != 0 {
					pr = fmt.Sprintf("#%d %s", p.PR, p.URL)
				}
				action := p.Action
				if p.Skipped != "" {
					action += ": " + p.Skipped
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Model, p.Version, p.To, orDash(p.Branch), action, pr)
			}
			tw.Flush()
			if err == nil && len(promotions) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "nothing to promote: every model of %s already has the same version and artifact in the target\n", req.From)
			}
			return err
		},
	}
	configFlag(cmd, &cfgPath)
	cmd.Flags().StringVar(&req.Repository, "repository", "", "the repository (ferry.yaml name), when there are several")
	cmd.Flags().StringVar(&req.Model, "model", "", "the model to promote (default: every model that differs)")
	cmd.Flags().StringVar(&req.From, "from", "", "the environment the model passed in")
	cmd.Flags().StringVar(&req.To, "to", "", "the environment to promote into (default: the source's promoteTo)")
	cmd.Flags().BoolVar(&req.Force, "force", false, "promote Git's head without asking the cluster whether the source passed")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
