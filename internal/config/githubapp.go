package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/ferry-gitops/ferry/promote"
)

// GitHubApp says which GitHub App installation a repository acts as, for Git
// over HTTPS and for the API, and where the App's private key is. Exactly one
// of InstallationID and InstallationOwner, and exactly one of PrivateKeyFile
// and PrivateKeyEnv, are set.
type GitHubApp struct {
	// AppID is the App's ID, from its settings page.
	AppID int64 `json:"appID"`
	// InstallationID is the installation's ID: the number at the end of the
	// installation's settings URL.
	InstallationID int64 `json:"installationID,omitempty"`
	// InstallationOwner is the organisation or user the App is installed
	// on; the installation is looked up once, at first use.
	InstallationOwner string `json:"installationOwner,omitempty"`
	// PrivateKeyFile is one of the App's private keys, the .pem file GitHub
	// generated; PrivateKeyEnv names an environment variable holding it.
	PrivateKeyFile string `json:"privateKeyFile,omitempty"`
	PrivateKeyEnv  string `json:"privateKeyEnv,omitempty"`
}

// githubLogin is what GitHub accepts as an organisation or user name.
var githubLogin = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)

// validateGitHubApp checks auth.githubApp, reading and parsing the private
// key: a key that does not parse is reported by its file or variable, never
// by its content.
func (r Repository) validateGitHubApp(key string, getenv func(string) string) []error {
	app := r.Auth.GitHubApp
	if app == nil {
		return nil
	}
	var errs []error
	add := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...)))
	}
	ak := key + ".auth.githubApp"
	if r.Auth.TokenEnv != "" || r.Auth.TokenFile != "" || r.Auth.SSHKeyFile != "" {
		add(key+".auth", "githubApp cannot be combined with tokenEnv, tokenFile or sshKeyFile; keep one")
	}
	if app.AppID <= 0 {
		add(ak+".appID", "required; the App ID shown on the App's settings page")
	}
	switch {
	case app.InstallationID != 0 && app.InstallationOwner != "":
		add(ak, "give installationID or installationOwner, not both")
	case app.InstallationID == 0 && app.InstallationOwner == "":
		add(ak+".installationID", "required (or installationOwner): the installation's ID, or the organisation or user the App is installed on")
	case app.InstallationID < 0:
		add(ak+".installationID", "%d is not an installation ID", app.InstallationID)
	case app.InstallationOwner != "" && !githubLogin.MatchString(app.InstallationOwner):
		add(ak+".installationOwner", "%q is not a GitHub organisation or user name", app.InstallationOwner)
	}
	switch {
	case app.PrivateKeyFile != "" && app.PrivateKeyEnv != "":
		add(ak, "give privateKeyFile or privateKeyEnv, not both")
	case app.PrivateKeyFile != "":
		data, err := os.ReadFile(app.PrivateKeyFile)
		if err != nil {
			add(ak+".privateKeyFile", "%s cannot be read", app.PrivateKeyFile)
		} else if _, err := promote.ParseAppKey(data); err != nil {
			add(ak+".privateKeyFile", "%s: %v", app.PrivateKeyFile, err)
		}
	case app.PrivateKeyEnv != "":
		if v := getenv(app.PrivateKeyEnv); v == "" {
			add(ak+".privateKeyEnv", "environment variable %s is empty or unset; export the App's private key (PEM) there", app.PrivateKeyEnv)
		} else if _, err := promote.ParseAppKey([]byte(v)); err != nil {
			add(ak+".privateKeyEnv", "environment variable %s: %v", app.PrivateKeyEnv, err)
		}
	default:
		add(ak+".privateKeyFile", "required (or privateKeyEnv): the App's private key, the .pem file GitHub generated")
	}
	if u, err := url.Parse(r.URL); err == nil && u.Scheme != "https" && !(u.Scheme == "http" && r.AllowLocal) {
		add(key+".url", "githubApp authenticates Git over HTTPS only; use the repository's https:// URL")
	}
	if apiURL, _, _, _ := r.GitHubRepo(); apiURL == "" {
		if u, err := url.Parse(r.URL); err == nil && u.Host != "" && !strings.EqualFold(u.Hostname(), "github.com") {
			add(key+".github.apiURL", "required with githubApp for a repository not on github.com: tokens are minted by the GitHub that hosts it, e.g. https://%s/api/v3/", u.Hostname())
		}
	}
	return errs
}

// GitHubAppKey returns the App's private key (PEM) from where
// auth.githubApp says it is. Errors name the file or variable, never the
// value.
func (r Repository) GitHubAppKey(getenv func(string) string) ([]byte, error) {
	app := r.Auth.GitHubApp
	if app == nil {
		return nil, fmt.Errorf("repository %s: no auth.githubApp", r.Name)
	}
	v, err := secretValue("repository "+r.Name+" githubApp private key", app.PrivateKeyEnv, app.PrivateKeyFile, getenv)
	if err != nil {
		return nil, err
	}
	return []byte(v), nil
}
