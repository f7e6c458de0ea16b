package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/config"
	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/preview"
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
	// secrets are the credentials read from the environment or files, which
	// the engine keeps out of everything it shows.
	secrets []string
}

// close stops what the app started beside its commands (the appliers'
// watches of their inventories).
func (a *app) close() {
	stopped := map[*apply.Applier]bool{}
	for _, ap := range a.appliers {
		if !stopped[ap] {
			stopped[ap] = true
			ap.Stop()
		}
	}
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
// configuration. Environments with the same kubeconfig, context and policy
// serviceAccount share one applier (its identity: ferry's own, or
// impersonating that account), and each carries its policy; repositories
// with the same GitHub API and token share one client
// (so its writes are serialised, and its rate limits shared). Each of
// appliers adjusts every applier's options (ferry serve's identity in a ring).
func build(cfg *config.Config, p purpose, appliers ...func(*apply.Options)) (*app, error) {
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
	if p == forCLI {
		// A command's holds are its own, never a serving replica's.
		appliers = append([]func(*apply.Options){func(o *apply.Options) { o.Identity = cliIdentity() }}, appliers...)
	}
	a := &app{cfg: cfg, renderer: renderer, appliers: map[string]*apply.Applier{}}
	type identity struct {
		cluster        config.Cluster
		serviceAccount string
	}
	clusters := map[identity]*apply.Applier{}
	clients := map[[2]string]*promote.Client{}
	apps := map[[2]string]*promote.App{}
	for _, rc := range cfg.Repositories {
		auth, err := rc.SourceAuth(os.Getenv)
		if err != nil {
			return nil, err
		}
		if auth.Token != "" {
			a.secrets = append(a.secrets, auth.Token)
		}
		inst, err := appInstallation(rc, apps)
		if err != nil {
			return nil, err
		}
		ro := source.RepoOptions{Name: rc.Name, URL: rc.URL, Branch: rc.Branch, Auth: auth, AllowLocal: rc.AllowLocal}
		if inst != nil {
			ro.Auth.TokenSource, ro.Author = inst.Token, botAuthor(inst)
		}
		repo, err := src.Open(ro)
		if err != nil {
			return nil, err
		}
		r := engine.Repository{Name: rc.Name, Source: repo, Branch: rc.Branch}
		if gh, err := gitHub(rc, inst, clients); err != nil {
			return nil, err
		} else if gh != nil {
			r.GitHub = gh
		}
		for _, ec := range rc.Environments {
			id := identity{cluster: ec.Cluster, serviceAccount: ec.Policy.ServiceAccount}
			applier, ok := clusters[id]
			if !ok {
				rest, err := restConfig(ec.Cluster)
				if err != nil {
					return nil, fmt.Errorf("%s/%s: cluster: %w", rc.Name, ec.Name, err)
				}
				opts := apply.Options{Config: rest, ServiceAccount: ec.Policy.ServiceAccountName()}
				for _, adjust := range appliers {
					adjust(&opts)
				}
				if applier, err = apply.New(opts); err != nil {
					return nil, fmt.Errorf("%s/%s: cluster: %w", rc.Name, ec.Name, err)
				}
				clusters[id] = applier
			}
			a.appliers[rc.Name+"/"+ec.Name] = applier
			r.Environments = append(r.Environments, engine.Environment{
				Name: ec.Name, Path: ec.Path, Applier: applier, PromoteTo: ec.PromoteTo, Promotion: ec.Promotion,
				Policy: &apply.Policy{Namespaces: ec.Policy.Namespaces, ClusterKinds: ec.Policy.ClusterKinds, FerryNamespace: cfg.Namespace},
			})
		}
		a.repos = append(a.repos, r)
	}
	return a, nil
}

// gitHub returns the GitHub API of a repository, or nil when it has none:
// not on GitHub as ferry.yaml says, or no token (nor App installation) to
// call it with.
func gitHub(rc config.Repository, inst *promote.Installation, clients map[[2]string]*promote.Client) (*promote.GitHub, error) {
	apiURL, owner, name, ok := rc.GitHubRepo()
	if !ok {
		return nil, nil
	}
	opts := promote.ClientOptions{APIURL: apiURL}
	var k [2]string
	if inst != nil {
		opts.TokenSource, k = inst.Token, [2]string{apiURL, inst.String()}
	} else {
		token, err := rc.GitHubToken(os.Getenv)
		if err != nil || token == "" {
			return nil, err
		}
		opts.Token, k = token, [2]string{apiURL, token}
	}
	c, ok := clients[k]
	if !ok {
		var err error
		if c, err = promote.NewClient(opts); err != nil {
			return nil, fmt.Errorf("repository %s: github: %w", rc.Name, err)
		}
		clients[k] = c
	}
	return c.Repository(owner, name), nil
}

// appInstallation returns the GitHub App installation a repository acts as,
// or nil without auth.githubApp. Repositories of one App (API URL and App
// ID) share it, so an installation mints one token for all of them.
func appInstallation(rc config.Repository, apps map[[2]string]*promote.App) (*promote.Installation, error) {
	ga := rc.Auth.GitHubApp
	if ga == nil {
		return nil, nil
	}
	apiURL, _, _, _ := rc.GitHubRepo()
	k := [2]string{apiURL, strconv.FormatInt(ga.AppID, 10)}
	app, ok := apps[k]
	if !ok {
		key, err := rc.GitHubAppKey(os.Getenv)
		if err != nil {
			return nil, err
		}
		if app, err = promote.NewApp(promote.AppOptions{APIURL: apiURL, ID: ga.AppID, PrivateKey: key}); err != nil {
			return nil, fmt.Errorf("repository %s: %w", rc.Name, err)
		}
		apps[k] = app
	}
	if ga.InstallationOwner != "" {
		return app.InstallationOf(ga.InstallationOwner), nil
	}
	return app.Installation(ga.InstallationID), nil
}

// botAuthor signs a repository's commits as the App's bot.
func botAuthor(inst *promote.Installation) func(context.Context) (object.Signature, error) {
	return func(ctx context.Context) (object.Signature, error) {
		name, email, err := inst.Author(ctx)
		return object.Signature{Name: name, Email: email}, err
	}
}

// engine returns an engine over the app's repositories; mutate, when given,
// adjusts its options (a command's flags).
func (a *app) engine(log *slog.Logger, reg prometheus.Registerer, allowMassDelete bool, mutate ...func(*engine.Options)) (*engine.Engine, error) {
	opts := engine.Options{
		Repositories:    a.repos,
		Renderer:        a.renderer,
		Resync:          a.cfg.Resync,
		Logger:          log,
		Registerer:      reg,
		AllowMassDelete: allowMassDelete,
		Secrets:         a.secrets,
	}
	for _, m := range mutate {
		m(&opts)
	}
	return engine.New(opts)
}

// previews returns the pool of pull request previews over the app's
// repositories: workers of its own beside the engine's, the same renderer
// (and so the same cache).
func (a *app) previews(log *slog.Logger, reg prometheus.Registerer) (*preview.Pool, error) {
	repos, err := a.previewRepositories(os.Getenv)
	if err != nil {
		return nil, err
	}
	return preview.New(preview.Options{Repositories: repos, Renderer: a.renderer, Logger: log, Registerer: reg})
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
