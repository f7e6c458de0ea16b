// Package config reads ferry.yaml (DESIGN.md section 2): strict decoding, every
// problem reported at once with its key path, and secrets resolved from the
// environment or files, never from the file itself.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ferry-gitops/ferry/source"
)

// Config is ferry.yaml.
type Config struct {
	// Listen is the public HTTP server: webhooks, /healthz and /readyz only.
	Listen string `json:"listen,omitempty"`
	// AdminListen is the HTTP server that is not public: /metrics,
	// /api/v1/status and the dashboard. Default loopback.
	AdminListen string `json:"adminListen,omitempty"`
	// Resync is a robfig/cron spec: fetch and drift-check every repository.
	Resync string `json:"resync,omitempty"`
	// DataDir holds clones and checkouts. Unset, ferry serve uses
	// /var/lib/ferry and the other commands the user's cache directory
	// (DataDirFor).
	DataDir string `json:"dataDir,omitempty"`
	// Namespace is the namespace ferry runs in (default ferry-system). No
	// environment may write there, nor in ferry-system, where ferry keeps
	// its inventories in every cluster.
	Namespace string  `json:"namespace,omitempty"`
	Webhook   Webhook `json:"webhook,omitempty"`
	// Coordination, when set, shares the repositories among replicas.
	Coordination *Coordination `json:"coordination,omitempty"`
	Repositories []Repository  `json:"repositories"`
}

// Webhook configures the GitHub receiver. The secret is read from SecretEnv
// or SecretFile; PreviousSecretEnv keeps the old one valid during a rotation.
type Webhook struct {
	// Disabled turns the receiver off; the resync still runs.
	Disabled          bool   `json:"disabled,omitempty"`
	SecretEnv         string `json:"secretEnv,omitempty"`
	SecretFile        string `json:"secretFile,omitempty"`
	PreviousSecretEnv string `json:"previousSecretEnv,omitempty"`
}

// Repository is one tracked model repository.
type Repository struct {
	Name         string        `json:"name"`
	URL          string        `json:"url"`
	Branch       string        `json:"branch,omitempty"`
	Auth         Auth          `json:"auth,omitempty"`
	AllowLocal   bool          `json:"allowLocal,omitempty"`
	GitHub       *GitHub       `json:"github,omitempty"`
	Environments []Environment `json:"environments"`

	// Preview configures pull request previews (preview.go).
	Preview *RepositoryPreview `json:"preview,omitempty"`
}

// Auth names where a repository's credentials are; never the credentials.
type Auth struct {
	TokenEnv       string `json:"tokenEnv,omitempty"`
	TokenFile      string `json:"tokenFile,omitempty"`
	SSHKeyFile     string `json:"sshKeyFile,omitempty"`
	KnownHostsFile string `json:"knownHostsFile,omitempty"`
	// GitHubApp authenticates Git and the API as a GitHub App installation
	// (githubapp.go), instead of a token or an SSH key.
	GitHubApp *GitHubApp `json:"githubApp,omitempty"`
}

// GitHub says where the repository's pull requests live. Owner and Repo
// default to those of a github.com URL; APIURL to https://api.github.com/
// (GitHub Enterprise: https://HOST/api/v3/).
type GitHub struct {
	APIURL string `json:"apiURL,omitempty"`
	Owner  string `json:"owner,omitempty"`
	Repo   string `json:"repo,omitempty"`
}

// Environment is one environment of a repository and the cluster it runs in.
type Environment struct {
	Name      string  `json:"name"`
	Path      string  `json:"path"`
	Cluster   Cluster `json:"cluster,omitempty"`
	PromoteTo string  `json:"promoteTo,omitempty"`
	// Promotion is pull-request (default) or branch.
	Promotion string `json:"promotion,omitempty"`
	// Policy is what the environment may write; see Policy.
	Policy Policy `json:"policy,omitempty"`
	// Preview is what pull request previews show of it (preview.go).
	Preview EnvironmentPreview `json:"preview,omitempty"`
}

// Cluster says how to reach an environment's cluster: an empty Kubeconfig
// means $KUBECONFIG, then in-cluster.
type Cluster struct {
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
}

// Defaults filled in by Load.
const (
	DefaultListen      = ":8080"
	DefaultAdminListen = "127.0.0.1:8081"
	DefaultResync      = "@every 5m"
	// DefaultDataDir is ferry serve's; see DataDirFor.
	DefaultDataDir = "/var/lib/ferry"
	DefaultBranch  = "main"
)

// Load reads, decodes and validates the file at path. Every problem is
// reported, each as "key.path: what is wrong; what is expected". Secret
// sources are checked to be set (getenv and file existence), not read —
// except the webhook secret, which only ferry serve needs: WebhookSecrets
// checks it; and a GitHub App's private key, which is read and parsed, so a
// key that does not parse is reported here (by its file or variable, never
// its content).
func Load(file string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	c, err := parse(data, getenv, filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", file, err)
	}
	return c, nil
}

// Parse is Load on bytes; relative paths stay relative to the working
// directory.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	return parse(data, getenv, "")
}

// parse decodes and validates; relative file paths in the configuration
// (dataDir, kubeconfigs, secret and key files) are taken relative to dir, the
// directory of ferry.yaml, so a configuration means the same from anywhere.
func parse(data []byte, getenv func(string) string, dir string) (*Config, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var c Config
	strict, err := kjson.UnmarshalStrict(js, &c)
	if err != nil {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	var errs []error
	for _, s := range strict {
		msg := strings.TrimPrefix(s.Error(), "json: ")
		if field, ok := strings.CutPrefix(msg, "unknown field "); ok {
			msg = strings.Trim(field, `"`) + ": unknown field; remove it or check its spelling"
		}
		errs = append(errs, errors.New(msg))
	}
	c.defaults()
	c.resolvePaths(dir)
	errs = append(errs, c.validate(getenv)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.Coordination != nil {
		c.Coordination.defaults()
	}
	if c.Resync == "" {
		c.Resync = DefaultResync
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if r.Branch == "" {
			r.Branch = DefaultBranch
		}
		for j := range r.Environments {
			if r.Environments[j].Promotion == "" {
				r.Environments[j].Promotion = "pull-request"
			}
		}
	}
}

func (c *Config) resolvePaths(dir string) {
	if dir == "" {
		return
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.DataDir)
	if c.Coordination != nil {
		abs(&c.Coordination.Kubeconfig)
	}
	abs(&c.Webhook.SecretFile)
	for i := range c.Repositories {
		r := &c.Repositories[i]
		abs(&r.Auth.TokenFile)
		abs(&r.Auth.SSHKeyFile)
		abs(&r.Auth.KnownHostsFile)
		if r.Auth.GitHubApp != nil {
			abs(&r.Auth.GitHubApp.PrivateKeyFile)
		}
		if r.Preview != nil && r.Preview.Auth != nil {
			abs(&r.Preview.Auth.TokenFile)
			abs(&r.Preview.Auth.SSHKeyFile)
			abs(&r.Preview.Auth.KnownHostsFile)
		}
		if r.AllowLocal && !strings.Contains(r.URL, "://") && !filepath.IsAbs(r.URL) && r.URL != "" {
			abs(&r.URL) // a local repository path, allowed by allowLocal
		}
		for j := range r.Environments {
			abs(&r.Environments[j].Cluster.Kubeconfig)
		}
	}
}

func (c *Config) validate(getenv func(string) string) []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "%q is not an address; expected host:port such as \":8080\"", c.Listen)
	}
	if c.Coordination != nil {
		errs = append(errs, c.Coordination.validate()...)
	}
	if _, port, err := net.SplitHostPort(c.AdminListen); err != nil {
		add("adminListen", "%q is not an address; expected host:port such as \"127.0.0.1:8081\"", c.AdminListen)
	} else if c.AdminListen == c.Listen && port != "0" {
		add("adminListen", "%q is also listen: status and metrics must not be served on the public port", c.AdminListen)
	}
	if _, err := cron.ParseStandard(c.Resync); err != nil {
		add("resync", "%q is not a cron spec (%v); expected e.g. \"@every 5m\" or \"*/5 * * * *\"", c.Resync, err)
	}
	if len(validation.IsDNS1123Label(c.Namespace)) > 0 {
		add("namespace", "%q is not a namespace name (lowercase letters, digits and '-', at most 63)", c.Namespace)
	}
	if !c.Webhook.Disabled && c.Webhook.SecretEnv == "" && c.Webhook.SecretFile == "" {
		add("webhook.secretEnv", "webhooks are on but no secret is configured; set secretEnv or secretFile, or webhook.disabled: true")
	}
	if len(c.Repositories) == 0 {
		add("repositories", "no repository configured; add at least one")
	}
	names := map[string]bool{}
	for i, r := range c.Repositories {
		key := fmt.Sprintf("repositories[%d]", i)
		switch {
		case r.Name == "":
			add(key+".name", "required; a short name such as ml-models")
		case len(validation.IsValidLabelValue(r.Name)) > 0:
			add(key+".name", "%q must be a valid label value (letters, digits, '-', '_', '.', at most 63)", r.Name)
		case names[r.Name]:
			add(key+".name", "%q is used by another repository; names must be unique", r.Name)
		}
		names[r.Name] = true
		if err := source.ValidateURL(r.URL, r.AllowLocal); err != nil {
			add(key+".url", "%v", err)
		}
		if err := source.ValidateBranch(r.Branch); err != nil {
			add(key+".branch", "%v", err)
		}
		errs = append(errs, r.Auth.validate(key+".auth", getenv)...)
		errs = append(errs, r.validateGitHubApp(key, getenv)...)
		errs = append(errs, r.validateGitHub(key)...)
		errs = append(errs, r.validateEnvironments(key)...)
		errs = append(errs, r.validatePreview(key, getenv)...)
		for j, e := range r.Environments {
			errs = append(errs, e.Policy.validate(fmt.Sprintf("%s.environments[%d].policy", key, j), c.Namespace)...)
		}
	}
	return errs
}

func readable(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
