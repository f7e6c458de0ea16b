package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-gitops/ferry/render"
)

func newValidateCommand() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check ferry.yaml, fetch each repository and render every environment; report every problem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			a, err := build(cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var problems []error
			for _, repo := range a.repos {
				head, err := repo.Source.Head(cmd.Context())
				if err != nil {
					problems = append(problems, err)
					continue
				}
				tree, err := repo.Source.Checkout(cmd.Context(), head)
				if err != nil {
					problems = append(problems, err)
					continue
				}
				for _, env := range repo.Environments {
					res, err := a.renderer.Render(cmd.Context(), render.Request{Root: tree.Dir, Path: env.Path})
					if err != nil {
						problems = append(problems, fmt.Errorf("%s/%s: %w", repo.Name, env.Name, err))
						continue
					}
					fmt.Fprintf(out, "ok  %s/%s at %s: %d objects, %d models, %d tests\n",
						repo.Name, env.Name, shortSHA(head), len(res.Objects), len(res.Models), len(res.Tests))
				}
				tree.Release()
			}
			return errors.Join(problems...)
		},
	}
	configFlag(cmd, &cfgPath)
	return cmd
}
