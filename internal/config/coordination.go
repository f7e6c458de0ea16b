package config

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Coordination shares the repositories among several replicas of ferry
// serve: each holds a member Lease on a home cluster, and each repository is
// owned by one live member (internal/ring). Unset, one replica does all.
type Coordination struct {
	// Kubeconfig and Context reach the home cluster where the member Leases
	// live; empty: $KUBECONFIG, then ~/.kube/config, then in-cluster
	// (ferry's own cluster).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
	// Namespace holds the Leases; default ferry-system.
	Namespace string `json:"namespace,omitempty"`
	// Ring names the ring (the Leases' ferry.dev/ring label); replicas of one
	// ring share work. Default ferry.
	Ring string `json:"ring,omitempty"`
	// LeaseDuration is how long a member lives unrenewed, whole seconds;
	// default 15s. A replica that cannot renew stops mutating before it lapses.
	LeaseDuration string `json:"leaseDuration,omitempty"`
	// Listen is the ring's own listener, where other members forward
	// webhooks and ask for status; default ":8082". It must be reachable by
	// the other members and by nothing else (a NetworkPolicy).
	Listen string `json:"listen,omitempty"`
	// Advertise is how other members reach Listen, e.g. http://10.1.2.3:8082;
	// default http://$POD_IP:<Listen's port>.
	Advertise string `json:"advertise,omitempty"`
	// TokenEnv names the environment variable holding the token members
	// authenticate each other with (the same in every replica).
	TokenEnv string `json:"tokenEnv,omitempty"`
}

// Defaults of Coordination.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRingListen    = ":8082"
)

// LeaseDurationValue is LeaseDuration parsed, with its default.
func (c *Coordination) LeaseDurationValue() time.Duration {
	if d, err := time.ParseDuration(c.LeaseDuration); err == nil && d > 0 {
		return d
	}
	return DefaultLeaseDuration
}

func (c *Coordination) defaults() {
	if c.Listen == "" {
		c.Listen = DefaultRingListen
	}
}

func (c *Coordination) validate() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("coordination.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.LeaseDuration != "" {
		d, err := time.ParseDuration(c.LeaseDuration)
		switch {
		case err != nil:
			add("leaseDuration", "%q is not a duration; expected e.g. 15s", c.LeaseDuration)
		case d < 3*time.Second || d%time.Second != 0:
			add("leaseDuration", "%q must be a whole number of seconds, at least 3s (a Lease keeps whole seconds)", c.LeaseDuration)
		}
	}
	if c.Namespace != "" && len(validation.IsDNS1123Label(c.Namespace)) > 0 {
		add("namespace", "%q is not a namespace name (lowercase letters, digits and '-', at most 63)", c.Namespace)
	}
	if c.Ring != "" && len(validation.IsValidLabelValue(c.Ring)) > 0 {
		add("ring", "%q is not a label value (letters, digits, '-', '_' and '.', at most 63): it labels the Leases ferry.dev/ring", c.Ring)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "%q is not an address; expected host:port such as \":8082\"", c.Listen)
	}
	if c.Advertise != "" {
		if u, err := url.Parse(c.Advertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("advertise", "%q is not a URL such as http://10.1.2.3:8082", c.Advertise)
		}
	}
	if c.TokenEnv == "" {
		add("tokenEnv", "required: the environment variable holding the token ferry's replicas authenticate each other with")
	}
	return errs
}
