package ring

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Snapshot lists the live members of ring name in namespace once, without
// joining it: for a command run beside a serving ring (ferry sync) to learn
// who owns what. The same defaults as Options apply to empty names; token is
// the ring's (Options.Token), and a Lease whose signature it does not verify
// is not listed.
//
// Unlike Members, which judges expiry by when it saw each Lease renewed,
// Snapshot sees each Lease once, so it judges by renewTime against this
// process's clock: a member whose clock runs behind may be missing, one whose
// clock runs ahead listed after it stopped. Its caller decides once, with
// that margin.
func Snapshot(ctx context.Context, client kubernetes.Interface, namespace, name, token string) ([]Member, error) {
	if namespace == "" {
		namespace = defaultNamespace
	}
	if name == "" {
		name = defaultName
	}
	if token == "" {
		return nil, fmt.Errorf("ring %s/%s: no token to verify the member Leases with", namespace, name)
	}
	list, err := client.CoordinationV1().Leases(namespace).List(ctx, metav1.ListOptions{LabelSelector: RingLabel + "=" + name})
	if err != nil {
		return nil, fmt.Errorf("ring %s/%s: list member Leases: %w", namespace, name, err)
	}
	now := time.Now()
	var out []Member
	for i := range list.Items {
		v, why := readLease(&list.Items[i], name, token)
		if expires := v.renewTime.Add(v.duration); why == "" && expires.After(now) {
			out = append(out, Member{Identity: v.identity, Address: v.address, Expires: expires})
		}
	}
	sortMembers(out)
	return out, nil
}

// OwnerAmong returns the member that owns key among members, as every replica
// of the ring computes it.
func OwnerAmong(members []Member, key string) (Member, bool) {
	i := ownerIndex(key, members)
	if i < 0 {
		return Member{}, false
	}
	return members[i], true
}
