package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultNamespace is the namespace ferry runs in unless `namespace:` says
// otherwise. Ferry keeps its inventories in ferry-system in every cluster,
// whatever it is set to.
const DefaultNamespace = "ferry-system"

// Policy is what an environment may write (DESIGN.md section 2), checked
// before anything is sent to its cluster (apply.Policy). A list left out
// takes its default; a list given, even empty, is the whole allow-list.
type Policy struct {
	// Namespaces the environment may write. Unset: the namespaces its render
	// declares as Namespace objects (never default or kube-*, and never one
	// that exists and is not the environment's).
	Namespaces []string `json:"namespaces,omitempty"`
	// ClusterKinds are the cluster-scoped kinds it may write, as Kind for
	// the core group or Kind.group: Namespace,
	// ClusterRole.rbac.authorization.k8s.io,
	// CustomResourceDefinition.apiextensions.k8s.io. Unset: Namespace only.
	ClusterKinds []string `json:"clusterKinds,omitempty"`
	// ServiceAccount, as namespace/name, is the account that apply, prune,
	// wait and tests impersonate in the environment's cluster. Unset: ferry's
	// own identity.
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// ServiceAccountName returns ServiceAccount as a name, zero when unset.
// Load has checked its form.
func (p Policy) ServiceAccountName() types.NamespacedName {
	ns, name, _ := strings.Cut(p.ServiceAccount, "/")
	return types.NamespacedName{Namespace: ns, Name: name}
}

// kindPattern is a Kind as the API spells it: CamelCase, starting upper case.
var kindPattern = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// groupOf are the groups of cluster-scoped kinds people often write without
// one, to say what they meant.
var groupOf = map[string]string{
	"ClusterRole":                    "rbac.authorization.k8s.io",
	"ClusterRoleBinding":             "rbac.authorization.k8s.io",
	"CustomResourceDefinition":       "apiextensions.k8s.io",
	"MutatingWebhookConfiguration":   "admissionregistration.k8s.io",
	"ValidatingWebhookConfiguration": "admissionregistration.k8s.io",
	"StorageClass":                   "storage.k8s.io",
	"PriorityClass":                  "scheduling.k8s.io",
	"IngressClass":                   "networking.k8s.io",
}

// validate checks the policy at key (…environments[j].policy); ferry is the
// namespace ferry runs in.
func (p Policy) validate(key, ferry string) []error {
	var errs []error
	add := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...)))
	}
	for i, ns := range p.Namespaces {
		k := fmt.Sprintf("%s.namespaces[%d]", key, i)
		switch {
		case len(validation.IsDNS1123Label(ns)) > 0:
			add(k, "%q is not a namespace name (lowercase letters, digits and '-', at most 63)", ns)
		case ns == ferry || ns == DefaultNamespace:
			add(k, "%q is ferry's own namespace, which no environment may write; remove it", ns)
		case slices.Index(p.Namespaces, ns) < i:
			add(k, "%q is listed twice", ns)
		}
	}
	for i, s := range p.ClusterKinds {
		k := fmt.Sprintf("%s.clusterKinds[%d]", key, i)
		gk := schema.ParseGroupKind(s)
		switch {
		case !kindPattern.MatchString(gk.Kind):
			add(k, "%q is not a kind; expected Kind for the core group or Kind.group, e.g. Namespace or ClusterRole.rbac.authorization.k8s.io", s)
		case gk.Group != "" && len(validation.IsDNS1123Subdomain(gk.Group)) > 0:
			add(k, "%q: %q is not an API group; expected Kind.group, e.g. ClusterRole.rbac.authorization.k8s.io (no version)", s, gk.Group)
		case gk.Group == "" && groupOf[gk.Kind] != "":
			add(k, "%q is not in the core group; write %s.%s", s, gk.Kind, groupOf[gk.Kind])
		case slices.Index(p.ClusterKinds, s) < i:
			add(k, "%q is listed twice", s)
		}
	}
	if p.ServiceAccount != "" {
		ns, name, ok := strings.Cut(p.ServiceAccount, "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
			add(key+".serviceAccount", "%q is not namespace/name, e.g. ml-dev/ferry-applier", p.ServiceAccount)
		}
	}
	return errs
}
