package apply

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// grant creates a ServiceAccount in ns bound to a Role of rules in ns (and,
// with clusterRules, to a ClusterRole of those), all removed when the test ends.
func grant(t *testing.T, ns, name string, rules, clusterRules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := t.Context()
	_, err := cluster.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}}
	if rules != nil {
		_, err = cluster.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = cluster.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, Subjects: subject}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	if clusterRules != nil {
		cluster := cluster // the ClusterRole outlives the namespace: delete it by name
		global := ns + "-" + name
		_, err = cluster.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: global}, Rules: clusterRules}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = cluster.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: global},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: global}, Subjects: subject}, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = cluster.Client.RbacV1().ClusterRoleBindings().Delete(ctx, global, metav1.DeleteOptions{})
			_ = cluster.Client.RbacV1().ClusterRoles().Delete(ctx, global, metav1.DeleteOptions{})
		})
	}
}

// applierRules lets an environment's account write ConfigMaps in one namespace.
var applierRules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "patch", "delete"}}}

func TestAnImpersonatedApplyIsBoundByTheAccountsRBAC(t *testing.T) {
	allowed, denied := cluster.Namespace(t), cluster.Namespace(t)
	grant(t, allowed, "applier", applierRules, nil)
	// Ferry's own identity is the test cluster's admin, which may impersonate.
	a, err := New(Options{Config: cluster.Config, ServiceAccount: types.NamespacedName{Namespace: allowed, Name: "applier"}})
	require.NoError(t, err)
	inv := inventoryFor(allowed)
	set := rendered(t, docs(cm(allowed, "settings"), cm(denied, "settings")))

	cs, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: set, Policy: &Policy{Namespaces: []string{allowed, denied}}})
	require.Error(t, err, "the policy allows both namespaces; RBAC has the last word")
	assert.Equal(t, "created", actions(cs)["ConfigMap/"+allowed+"/settings"])
	msg := err.Error()
	assert.True(t, strings.HasPrefix(msg, "ConfigMap/"+denied+"/settings: apply: "), msg)
	assert.Contains(t, msg, "forbidden")
	assert.Contains(t, msg, `User "system:serviceaccount:`+allowed+`:applier" cannot patch resource "configmaps"`)
	assert.False(t, IsTransient(err), "forbidden is bad input")

	_, err = cluster.Client.CoreV1().ConfigMaps(allowed).Get(t.Context(), "settings", metav1.GetOptions{})
	assert.NoError(t, err)
	_, err = cluster.Client.CoreV1().ConfigMaps(denied).Get(t.Context(), "settings", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "RBAC refused it")
	assert.Contains(t, inventoryData(t, inv), `"name":"settings"`, "ferry keeps the inventory with its own identity")

	// Waiting and pruning run as the account too, within its Role.
	health, err := a.Wait(t.Context(), inv, rendered(t, cm(allowed, "settings")), WaitOptions{Timeout: 30 * time.Second})
	require.NoError(t, err)
	assert.True(t, health.Healthy())
	cs, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: rendered(t, cm(allowed, "renamed")), Policy: &Policy{Namespaces: []string{allowed}}, AllowMassDelete: true})
	require.NoError(t, err)
	assert.Equal(t, "deleted", actions(cs)["ConfigMap/"+allowed+"/settings"])
}

// Ferry's own rules when every environment impersonates an account, as the
// reply to issue 11 lists them: reads that decide, cluster-wide, for the kinds
// environments apply (here ConfigMaps), its state in ferry-system, and
// impersonate on each account by name.
var (
	ferryClusterRules = []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"get", "list"}},
	}
	ferryStateRules = []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{hashKeySecret}, Verbs: []string{"get"}},
	}
)

func TestWithImpersonationFerryNeedsOnlyItsOwnRules(t *testing.T) {
	tenant, home := cluster.Namespace(t), cluster.Namespace(t)
	grant(t, tenant, "applier", applierRules, nil)
	grant(t, home, "ferry", nil, ferryClusterRules)
	ensureNamespace(t, inventoryNS)
	state := home + "-state" // in ferry-system, which outlives the test
	_, err := cluster.Client.RbacV1().Roles(inventoryNS).Create(t.Context(), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: state}, Rules: ferryStateRules}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cluster.Client.RbacV1().RoleBindings(inventoryNS).Create(t.Context(), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: state},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: state},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: home, Name: "ferry"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cluster.Client.RbacV1().RoleBindings(inventoryNS).Delete(ctx, state, metav1.DeleteOptions{})
		_ = cluster.Client.RbacV1().Roles(inventoryNS).Delete(ctx, state, metav1.DeleteOptions{})
	})
	_, err = cluster.Client.RbacV1().Roles(tenant).Create(t.Context(), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "impersonate-applier"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, ResourceNames: []string{"applier"}, Verbs: []string{"impersonate"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cluster.Client.RbacV1().RoleBindings(tenant).Create(t.Context(), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "impersonate-applier"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "impersonate-applier"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: home, Name: "ferry"}}}, metav1.CreateOptions{})
	require.NoError(t, err)

	token, err := cluster.Client.CoreV1().ServiceAccounts(home).CreateToken(t.Context(), "ferry",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(600))}}, metav1.CreateOptions{})
	require.NoError(t, err)
	asFerry := rest.AnonymousClientConfig(cluster.Config)
	asFerry.BearerToken = token.Status.Token

	a, err := New(Options{Config: asFerry, ServiceAccount: types.NamespacedName{Namespace: tenant, Name: "applier"}})
	require.NoError(t, err)
	inv := inventoryFor(tenant)
	req := Request{Inventory: inv, Revision: "r1", Objects: rendered(t, cm(tenant, "settings")), Policy: &Policy{Namespaces: []string{tenant}}}
	cs, err := a.Apply(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, "created", actions(cs)["ConfigMap/"+tenant+"/settings"])
	cs, err = a.Apply(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, 1, cs.Count(Unchanged))

	// Without impersonation the same identity may write nothing of the environment's.
	own, err := New(Options{Config: asFerry})
	require.NoError(t, err)
	_, err = own.Apply(t.Context(), Request{Inventory: inventoryFor(tenant + "-own"), Revision: "r1", Objects: rendered(t, cm(tenant, "other")), Policy: &Policy{Namespaces: []string{tenant}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ConfigMap/"+tenant+"/other: apply: ")
	assert.Contains(t, err.Error(), "forbidden")
}

// ensureNamespace creates ns unless it exists; it is left in place.
func ensureNamespace(t *testing.T, ns string) {
	t.Helper()
	_, err := cluster.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}
