// Package config reads ferry.yaml (DESIGN.md section 2): strict decoding, every
// problem reported at once with its key path, and secrets resolved from the
// environment or files, never from the file itself.
package config

import (
	"cmp"
	"fmt"
	"net/url"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

func (a Auth) validate(key string, getenv func(string) string) []error {
	var errs []error
	add := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...)))
	}
	if (a.TokenEnv != "" || a.TokenFile != "") && a.SSHKeyFile != "" {
		add(key, "give a token or an SSH key, not both")
	}
	if a.TokenEnv != "" && getenv(a.TokenEnv) == "" {
		add(key+".tokenEnv", "environment variable %s is empty or unset; export the token there", a.TokenEnv)
	}
	if a.TokenFile != "" && !readable(a.TokenFile) {
		add(key+".tokenFile", "%s cannot be read", a.TokenFile)
	}
	if a.SSHKeyFile != "" {
		if !readable(a.SSHKeyFile) {
			add(key+".sshKeyFile", "%s cannot be read", a.SSHKeyFile)
		}
		if a.KnownHostsFile == "" {
			add(key+".knownHostsFile", "required with sshKeyFile: host keys are always checked")
		} else if !readable(a.KnownHostsFile) {
			add(key+".knownHostsFile", "%s cannot be read", a.KnownHostsFile)
		}
	}
	return errs
}

func (r Repository) validateEnvironments(key string) []error {
	var errs []error
	add := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...)))
	}
	if len(r.Environments) == 0 {
		add(key+".environments", "no environment configured; add at least one")
	}
	envs := map[string]int{}
	for j, e := range r.Environments {
		ek := fmt.Sprintf("%s.environments[%d]", key, j)
		switch {
		case e.Name == "":
			add(ek+".name", "required; e.g. dev")
		case len(validation.IsValidLabelValue(e.Name)) > 0:
			add(ek+".name", "%q must be a valid label value", e.Name)
		case envs[e.Name] > 0:
			add(ek+".name", "%q is used by another environment of %s; names must be unique", e.Name, r.Name)
		}
		envs[e.Name] = j + 1
		clean := path.Clean(e.Path)
		if e.Path == "" || path.IsAbs(e.Path) || clean == ".." || strings.HasPrefix(clean, "../") {
			add(ek+".path", "%q must be a directory inside the repository, e.g. environments/%s", e.Path, e.Name)
		}
		if e.Promotion != "pull-request" && e.Promotion != "branch" {
			add(ek+".promotion", "%q is not pull-request or branch", e.Promotion)
		}
	}
	for j, e := range r.Environments {
		if e.PromoteTo == "" {
			continue
		}
		ek := fmt.Sprintf("%s.environments[%d].promoteTo", key, j)
		if envs[e.PromoteTo] == 0 {
			add(ek, "%q is not an environment of %s", e.PromoteTo, r.Name)
			continue
		}
		if e.PromoteTo == e.Name {
			add(ek, "%q promotes to itself", e.Name)
			continue
		}
		if cycle := r.promotionCycle(e.Name); cycle != "" && strings.HasPrefix(cycle, e.Name+" ") {
			add(ek, "promotions form a cycle: %s", cycle)
		}
	}
	return errs
}

// promotionCycle follows promoteTo from start and returns the cycle it falls
// into, if any, as "a -> b -> a".
func (r Repository) promotionCycle(start string) string {
	next := map[string]string{}
	for _, e := range r.Environments {
		next[e.Name] = e.PromoteTo
	}
	seen := []string{start}
	for cur := next[start]; cur != ""; cur = next[cur] {
		for i, s := range seen {
			if s == cur {
				return strings.Join(append(seen[i:], cur), " -> ")
			}
		}
		seen = append(seen, cur)
	}
	return ""
}

// GitHubRepo returns the repository's GitHub API URL, owner and name: as
// configured, the owner and name defaulting to a github.com URL's. ok is false
// when the repository is not on GitHub as far as ferry.yaml says.
func (r Repository) GitHubRepo() (apiURL, owner, repo string, ok bool) {
	if r.GitHub != nil {
		apiURL, owner, repo = r.GitHub.APIURL, r.GitHub.Owner, r.GitHub.Repo
	}
	if owner == "" || repo == "" {
		if u, err := url.Parse(r.URL); err == nil && strings.EqualFold(u.Host, "github.com") {
			parts := strings.Split(strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git"), "/")
			if len(parts) == 2 {
				owner, repo = cmp.Or(owner, parts[0]), cmp.Or(repo, parts[1])
			}
		}
	}
	return apiURL, owner, repo, owner != "" && repo != ""
}

func (r Repository) validateGitHub(key string) []error {
	var errs []error
	add := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...)))
	}
	if r.GitHub != nil && r.GitHub.APIURL != "" {
		u, err := url.Parse(r.GitHub.APIURL)
		if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && r.AllowLocal)) || u.Host == "" {
			add(key+".github.apiURL", "%q is not an https URL; expected https://api.github.com/ or https://HOST/api/v3/", r.GitHub.APIURL)
		}
	}
	_, _, _, onGitHub := r.GitHubRepo()
	hasToken := r.Auth.TokenEnv != "" || r.Auth.TokenFile != "" || r.Auth.GitHubApp != nil
	for j, e := range r.Environments {
		if e.PromoteTo == "" || e.Promotion != "pull-request" {
			continue
		}
		ek := fmt.Sprintf("%s.environments[%d].promotion", key, j)
		switch {
		case !onGitHub:
			add(ek, "pull-request promotion needs the repository on GitHub: set github.owner and github.repo (or a github.com url), or use promotion: branch")
		case !hasToken:
			add(ek, "pull-request promotion needs a GitHub token: set auth.tokenEnv, auth.tokenFile or auth.githubApp, or use promotion: branch")
		}
	}
	return errs
}
