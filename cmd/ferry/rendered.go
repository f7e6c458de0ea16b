package main

import (
	"context"
	"fmt"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/render"
)

// forEachRendered resolves each repository's head, checks it out, and renders
// each environment (all, or only the one named env), calling fn with the
// result. It returns every problem met, each naming its repository and
// environment, and keeps going past them.
func (a *app) forEachRendered(ctx context.Context, env string, fn func(repo engine.Repository, e engine.Environment, head string, res *render.Result) error) []error {
	var problems []error
	for _, repo := range a.repos {
		head, err := repo.Source.Head(ctx)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		tree, err := repo.Source.Checkout(ctx, head)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		for _, e := range repo.Environments {
			if env != "" && e.Name != env {
				continue
			}
			res, err := a.renderer.Render(ctx, render.Request{Root: tree.Dir, Path: e.Path})
			if err == nil {
				err = fn(repo, e, head, res)
			}
			if err != nil {
				problems = append(problems, fmt.Errorf("%s/%s: %w", repo.Name, e.Name, err))
			}
		}
		tree.Release()
	}
	return problems
}
