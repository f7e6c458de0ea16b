package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/render"
)

func newValidateCommand() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check ferry.yaml, fetch each repository and render every environment; report every problem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := loadApp(cfgPath, forCLI)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			problems := a.forEachRendered(cmd.Context(), "", func(repo engine.Repository, env engine.Environment, head string, res *render.Result) error {
				fmt.Fprintf(out, "ok  %s/%s at %s: %d objects, %d models, %d tests\n",
					repo.Name, env.Name, shortSHA(head), len(res.Objects), len(res.Models), len(res.Tests))
				return nil
			})
			return errors.Join(problems...)
		},
	}
	configFlag(cmd, &cfgPath)
	return cmd
}
