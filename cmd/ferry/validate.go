package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/config"
	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/render"
)

func newValidateCommand() *cobra.Command {
	var cfgPath string
	var configOnly bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check ferry.yaml, fetch each repository, render every environment and check it against its policy; report every problem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configOnly {
				cfg, err := config.Load(cfgPath, os.Getenv)
				if err != nil {
					return err
				}
				envs := 0
				for _, r := range cfg.Repositories {
					envs += len(r.Environments)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ok  %s: %d repositories, %d environments\n", cfgPath, len(cfg.Repositories), envs)
				return nil
			}
			a, err := loadApp(cfgPath, forCLI)
			if err != nil {
				return err
			}
			defer a.close()
			out := cmd.OutOrStdout()
			problems := a.forEachRendered(cmd.Context(), "", func(repo engine.Repository, env engine.Environment, head string, res *render.Result) error {
				if err := checkPolicy(repo, env, res); err != nil {
					return err
				}
				fmt.Fprintf(out, "ok  %s/%s at %s: %d objects, %d models, %d tests\n",
					repo.Name, env.Name, shortSHA(head), len(res.Objects), len(res.Models), len(res.Tests))
				return nil
			})
			return errors.Join(problems...)
		},
	}
	configFlag(cmd, &cfgPath)
	cmd.Flags().BoolVar(&configOnly, "config-only", false, "check ferry.yaml and the secrets it names, without reaching Git or a cluster (for CI)")
	return cmd
}

// checkPolicy checks an environment's rendered objects against its policy
// without a cluster (apply.Policy.Check: an object without a namespace counts
// as cluster-scoped) and returns every violation, one per line.
func checkPolicy(repo engine.Repository, env engine.Environment, res *render.Result) error {
	if env.Policy == nil {
		return nil
	}
	err := env.Policy.Check(apply.Inventory{Repository: repo.Name, Environment: env.Name}, res.Objects)
	if err == nil {
		return nil
	}
	violations := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		violations = joined.Unwrap()
	}
	lines := make([]string, len(violations))
	for i, v := range violations {
		lines[i] = "  " + v.Error()
	}
	return fmt.Errorf("the policy refuses %d of %d objects:\n%s", len(violations), len(res.Objects), strings.Join(lines, "\n"))
}
