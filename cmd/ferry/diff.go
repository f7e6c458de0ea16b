package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/render"
)

// errDiffers makes `ferry diff` exit 1 when a cluster differs from Git; any
// other error makes it exit 2, so CI can tell the two apart.
var errDiffers = &exitError{code: 1, err: errors.New("the cluster differs from Git")}

func newDiffCommand() *cobra.Command {
	var cfgPath, env string
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Show what applying Git's head would change in each cluster; exit 1 when anything would",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := loadApp(cfgPath, forCLI)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer a.close()
			out := cmd.OutOrStdout()
			differs := false
			problems := a.forEachRendered(cmd.Context(), env, func(repo engine.Repository, e engine.Environment, head string, res *render.Result) error {
				diffs, err := a.appliers[repo.Name+"/"+e.Name].Diff(cmd.Context(), apply.Request{
					Inventory: apply.Inventory{Repository: repo.Name, Environment: e.Name}, Revision: head, Objects: res.Objects, Policy: e.Policy,
				})
				for _, d := range diffs {
					if d.Action != apply.Unchanged {
						differs = true
						fmt.Fprintf(out, "%s/%s: %s would be %s\n%s", repo.Name, e.Name, d.Ref, d.Action, d.Diff)
					}
				}
				return err
			})
			if len(problems) > 0 {
				return &exitError{code: 2, err: errors.Join(problems...)}
			}
			if differs {
				return errDiffers
			}
			fmt.Fprintln(out, "no differences")
			return nil
		},
	}
	configFlag(cmd, &cfgPath)
	cmd.Flags().StringVar(&env, "env", "", "only this environment")
	return cmd
}
