package ring

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Snapshot lists the live members of ring name in namespace once, without
// joining it: for a command run beside a serving ring (ferry sync) to learn
// who owns what. The same defaults as Options apply to empty names.
func Snapshot(ctx context.Context, client kubernetes.Interface, namespace, name string) ([]Member, error) {
	if namespace == "" {
		namespace = defaultNamespace
	}
	if name == "" {
		name = defaultName
	}
	list, err := client.CoordinationV1().Leases(namespace).List(ctx, metav1.ListOptions{LabelSelector: RingLabel + "=" + name})
	if err != nil {
		return nil, fmt.Errorf("ring %s/%s: list member Leases: %w", namespace, name, err)
	}
	leases := make([]*coordinationv1.Lease, len(list.Items))
	for i := range list.Items {
		leases[i] = &list.Items[i]
	}
	return live(leases, time.Now()), nil
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
