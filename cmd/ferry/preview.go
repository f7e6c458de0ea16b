package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-gitops/ferry/internal/preview"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/source"
)

func newPreviewCommand() *cobra.Command {
	var cfgPath, repoName, base, head string
	var number int
	cmd := &cobra.Command{
		Use:   "preview (--pr N | [--base REF] --head REF)",
		Short: "Print what merging a pull request, or one ref into another, would change in each environment, in Markdown",
		Long: "Preview prints the report ferry serve posts on a pull request, whole, to stdout, and exits 0\n" +
			"whatever it shows: for CI systems other than GitHub. With --pr it fetches refs/pull/N/head from\n" +
			"the repository with its read-only preview credentials and compares it with its merge base with\n" +
			"the tracked branch; with --head (and --base, the tracked branch by default: a branch, a ref\n" +
			"such as refs/tags/v1, or a commit) it needs no GitHub at all. It posts nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case number < 0:
				return fmt.Errorf("--pr %d: give a pull request number", number)
			case (number > 0) == (head != ""):
				return errors.New("give --pr N, or --head REF (with --base REF, default the tracked branch)")
			case number > 0 && base != "":
				return errors.New("--base goes with --head; a pull request's base is the tracked branch")
			}
			a, err := loadApp(cfgPath, forCLI)
			if err != nil {
				return err
			}
			defer a.close()
			repos, err := a.previewRepositories(os.Getenv)
			if err != nil {
				return err
			}
			repo, err := pickRepository(repos, repoName)
			if err != nil {
				return err
			}
			p, err := preview.Build(cmd.Context(), a.renderer, repo, preview.Target{Number: number, Base: base, Head: head})
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), promote.PreviewBody(*p, 0))
			return nil
		},
	}
	configFlag(cmd, &cfgPath)
	cmd.Flags().IntVar(&number, "pr", 0, "the pull request to preview")
	cmd.Flags().StringVar(&head, "head", "", "the ref or commit to preview, instead of a pull request")
	cmd.Flags().StringVar(&base, "base", "", "what --head merges into (default: the tracked branch)")
	cmd.Flags().StringVar(&repoName, "repository", "", "the repository (ferry.yaml name), when there are several")
	return cmd
}

// pickRepository returns the repository named, or the only one.
func pickRepository(repos []preview.Repository, name string) (preview.Repository, error) {
	var names []string
	for _, r := range repos {
		if r.Name == name || (name == "" && len(repos) == 1) {
			return r, nil
		}
		names = append(names, r.Name)
	}
	if name == "" {
		return preview.Repository{}, fmt.Errorf("--repository is required: ferry.yaml has %d repositories (%v)", len(repos), names)
	}
	return preview.Repository{}, fmt.Errorf("--repository %s: not in ferry.yaml (%v)", name, names)
}

// previewRepositories gives each repository of the app to previews: its
// clone through the read-only door (preview.auth's credentials, anonymous
// when unset, never the repository's own), its GitHub, and each
// environment's policy and, with preview.clusterDiff, its cluster.
func (a *app) previewRepositories(getenv func(string) string) ([]preview.Repository, error) {
	out := make([]preview.Repository, 0, len(a.repos))
	for i, rc := range a.cfg.Repositories {
		er := a.repos[i]
		clone, ok := er.Source.(*source.Repository)
		if !ok {
			return nil, fmt.Errorf("repository %s: previews need a Git clone", rc.Name)
		}
		auth, err := rc.PreviewAuth(getenv)
		if err != nil {
			return nil, err
		}
		pulls, err := clone.PullRequests(auth)
		if err != nil {
			return nil, err
		}
		r := preview.Repository{Name: rc.Name, Branch: rc.Branch, Source: pulls}
		if gh, ok := er.GitHub.(*promote.GitHub); ok && gh != nil {
			r.GitHub = gh
		}
		for j, ec := range rc.Environments {
			e := preview.Environment{Name: ec.Name, Path: ec.Path, Policy: er.Environments[j].Policy}
			if ec.Preview.ClusterDiff {
				e.Cluster = a.appliers[rc.Name+"/"+ec.Name]
			}
			r.Environments = append(r.Environments, e)
		}
		out = append(out, r)
	}
	return out, nil
}

// runBeside runs the engine and the preview pool until ctx ends, and
// returns the engine's error once both have stopped.
func runBeside(ctx context.Context, engine, previews func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { previews(ctx); close(done) }()
	err := engine(ctx)
	cancel()
	<-done
	return err
}
