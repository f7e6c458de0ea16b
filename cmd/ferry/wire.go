package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/config"
	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
	"github.com/ferry-gitops/ferry/webhooks"
)

// app is everything a command needs, built from ferry.yaml.
type app struct {
	cfg      *config.Config
	repos    []engine.Repository
	renderer *render.Renderer
	// appliers are the environments' clusters, by "repository/environment",
	// for the commands that use more of them than the engine does.
	appliers map[string]*apply.Applier
}

// purpose says which command builds an app: only ferry serve keeps its clones
// in /var/lib/ferry by default.
type purpose int

const (
	forCLI purpose = iota
	forServe
)

// loadApp reads ferry.yaml at path and builds the app from it.
func loadApp(path string, p purpose) (*app, error) {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return nil, err
	}
	return build(cfg, p)
}

// build opens the repositories, clusters and GitHub APIs named in the
// configuration. Clusters with the same kubeconfig and context share one
// applier; repositories with the same GitHub API and token share one client
// (so its writes are serialised, and its rate limits shared).
func build(cfg *config.Config, p purpose) (*app, error) {
	dataDir, err := cfg.DataDirFor(p == forServe)
	if err != nil {
		return nil, err
	}
	src, err := source.New(source.Options{
		DataDir: dataDir,
		Author:  object.Signature{Name: "Ferry", Email: "ferry@users.noreply.github.com"},
	})
	if err != nil {
		return nil, err
	}
	renderer, err := render.New(render.Options{})
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, renderer: renderer, appliers: map[string]*apply.Applier{}}
	clusters := map[config.Cluster]*apply.Applier{}
	clients := map[[2]string]*promote.Client{}
	for _, rc := range cfg.Repositories {
		auth, err := rc.SourceAuth(os.Getenv)
		if err != nil {
			return nil, err
		}
		repo, err := src.Open(source.RepoOptions{Name: rc.Name, URL: rc.URL, Branch: rc.Branch, Auth: auth, AllowLocal: rc.AllowLocal})
		if err != nil {
			return nil, err
		}
		r := engine.Repository{Name: rc.Name, Source: repo, Branch: rc.Branch}
		if gh, err := gitHub(rc, clients); err != nil {
			return nil, err
		} else if gh != nil {
			r.GitHub = gh
		}
		for _, ec := range rc.Environments {
			applier, ok := clusters[ec.Cluster]
			if !ok {
				rest, err := restConfig(ec.Cluster)
				if err != nil {
					return nil, fmt.Errorf("%s/%s: cluster: %w", rc.Name, ec.Name, err)
				}
				if applier, err = apply.New(apply.Options{Config: rest}); err != nil {
					return nil, fmt.Errorf("%s/%s: cluster: %w", rc.Name, ec.Name, err)
				}
				clusters[ec.Cluster] = applier
			}
			a.appliers[rc.Name+"/"+ec.Name] = applier
			r.Environments = append(r.Environments, engine.Environment{
				Name: ec.Name, Path: ec.Path, Applier: applier, PromoteTo: ec.PromoteTo, Promotion: ec.Promotion,
			})
		}
		a.repos = append(a.repos, r)
	}
	return a, nil
}

// gitHub returns the GitHub API of a repository, or nil when it has none:
// not on GitHub as ferry.yaml says, or no token to call it with.
func gitHub(rc config.Repository, clients map[[2]string]*promote.Client) (*promote.GitHub, error) {
	apiURL, owner, name, ok := rc.GitHubRepo()
	if !ok {
		return nil, nil
	}
	token, err := rc.GitHubToken(os.Getenv)
	if err != nil || token == "" {
		return nil, err
	}
	k := [2]string{apiURL, token}
	c, ok := clients[k]
	if !ok {
		if c, err = promote.NewClient(promote.ClientOptions{APIURL: apiURL, Token: token}); err != nil {
			return nil, fmt.Errorf("repository %s: github: %w", rc.Name, err)
		}
		clients[k] = c
	}
	return c.Repository(owner, name), nil
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
		if _, owner, name, ok := r.GitHubRepo(); ok {
			wr.FullName = owner + "/" + name
		}
		out = append(out, wr)
	}
	return out
}
