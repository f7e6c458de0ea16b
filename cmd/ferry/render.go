package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-gitops/ferry/render"
)

func newRenderCommand() *cobra.Command {
	var root string
	var inputs bool
	cmd := &cobra.Command{
		Use:   "render DIR",
		Short: "Render one environment directory and print the YAML Ferry would apply",
		Long: `Render builds DIR with kustomize in-process, expands its Model resources and prints
the objects in apply order, as one YAML stream. The checkout root (nothing outside it is
read) is the enclosing Git repository's top level, or --root. With --inputs it prints the
files the build read instead: a commit touching none of them does not affect DIR.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if root == "" {
				if root, err = gitTopLevel(dir); err != nil {
					return err
				}
			}
			if root, err = filepath.Abs(root); err != nil {
				return err
			}
			rel, err := filepath.Rel(root, dir)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return fmt.Errorf("render %s: not inside the checkout root %s; pass --root", args[0], root)
			}
			r, err := render.New(render.Options{})
			if err != nil {
				return err
			}
			res, err := r.Render(cmd.Context(), render.Request{Root: root, Path: rel})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if inputs {
				for _, in := range res.Inputs {
					fmt.Fprintln(out, in)
				}
				return nil
			}
			y, err := render.YAML(res.Objects)
			if err != nil {
				return err
			}
			_, err = out.Write(y)
			return err
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "checkout root (default: the enclosing Git repository's top level)")
	cmd.Flags().BoolVar(&inputs, "inputs", false, "print the files the build read instead of the objects")
	return cmd
}

// gitTopLevel finds the directory holding .git above dir.
func gitTopLevel(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("render " + dir + ": not inside a Git repository; pass --root")
		}
	}
}
