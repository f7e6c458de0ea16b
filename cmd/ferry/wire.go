package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/config"
	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
	"github.com/ferry-gitops/ferry/webhooks"
)

// app is everything a command needs, built from ferry.yaml.
type app struct {
	cfg      *config.Config
	repos    []engine.Repository
	renderer *render.Renderer
}

// loadApp reads ferry.yaml at path and builds the app from it.
func loadApp(path string) (*app, error) {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return nil, err
	}
	return build(cfg)
}

// build opens the repositories and the clusters named in the configuration.
// Clusters with the same kubeconfig and context share one applier.
func build(cfg *config.Config) (*app, error) {
	src, err := source.New(source.Options{
		DataDir: cfg.DataDir,
		Author:  object.Signature{Name: "Ferry", Email: "ferry@users.noreply.github.com"},
	})
	if err != nil {
		return nil, err
	}
	renderer, err := render.New(render.Options{})
	if err != nil {
		return nil, err
	}
	appliers := map[config.Cluster]*apply.Applier{}
	a := &app{cfg: cfg, renderer: renderer}
	for _, rc := range cfg.Repositories {
		auth, err := rc.SourceAuth(os.Getenv)
		if err != nil {
			return nil, err
		}
		repo, err := src.Open(source.RepoOptions{Name: rc.Name, URL: rc.URL, Branch: rc.Branch, Auth: auth, AllowLocal: rc.AllowLocal})
		if err != nil {
			return nil, err
		}
		r := engine.Repository{Name: rc.Name, Source: repo}
		for _, ec := range rc.Environments {
			applier, ok := appliers[ec.Cluster]
			if !ok {
				rest, err := restConfig(ec.Cluster)
				if err != nil {
					return nil, fmt.Errorf("%s/%s: cluster: %w", rc.Name, ec.Name, err)
				}
				if applier, err = apply.New(apply.Options{Config: rest}); err != nil {
					return nil, fmt.Errorf("%s/%s: cluster: %w", rc.Name, ec.Name, err)
				}
				appliers[ec.Cluster] = applier
			}
			r.Environments = append(r.Environments, engine.Environment{Name: ec.Name, Path: ec.Path, Applier: applier})
		}
		a.repos = append(a.repos, r)
	}
	return a, nil
}

// engine returns an engine over the app's repositories.
func (a *app) engine(log *slog.Logger, reg prometheus.Registerer, allowMassDelete bool) (*engine.Engine, error) {
	return engine.New(engine.Options{
		Repositories:    a.repos,
		Renderer:        a.renderer,
		Resync:          a.cfg.Resync,
		Logger:          log,
		Registerer:      reg,
		AllowMassDelete: allowMassDelete,
	})
}

// restConfig reaches a cluster: the named kubeconfig, else $KUBECONFIG and
// ~/.kube/config, else the in-cluster service account; with the context given.
func restConfig(c config.Cluster) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
}

// webhookRepositories tells the receiver which repositories and branches are
// tracked: by GitHub owner/name (configured, or read from a github.com URL)
// and by clone URL.
func webhookRepositories(cfg *config.Config) []webhooks.Repository {
	var out []webhooks.Repository
	for _, r := range cfg.Repositories {
		wr := webhooks.Repository{Name: r.Name, URLs: []string{r.URL}, Branch: r.Branch}
		if r.GitHub != nil && r.GitHub.Owner != "" && r.GitHub.Repo != "" {
			wr.FullName = r.GitHub.Owner + "/" + r.GitHub.Repo
		} else if u, err := url.Parse(r.URL); err == nil && strings.EqualFold(u.Host, "github.com") {
			wr.FullName = strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
		}
		out = append(out, wr)
	}
	return out
}
