package apply

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// maxExplained bounds how many objects one explain looks at the pods of.
const maxExplained = 10

// explain adds to each Deployment, StatefulSet or DaemonSet of r that is not
// Current why its pods are not ready, when they say: Pending with the
// scheduler's message (0/3 nodes are available: 3 Insufficient
// nvidia.com/gpu), or containers waiting with their reason. One pod LIST per
// such object; a failed LIST adds nothing.
func (a *Applier) explain(ctx context.Context, r *HealthReport) {
	n := 0
	for i := range r.Objects {
		h := &r.Objects[i]
		if h.Status == Current || h.live == nil || n == maxExplained {
			continue
		}
		switch h.live.GetKind() {
		case "Deployment", "StatefulSet", "DaemonSet":
		default:
			continue
		}
		n++
		if why := a.podsSay(ctx, h.live); why != "" && !strings.Contains(h.Message, why) {
			h.Message = strings.TrimSpace(h.Message + " (pods: " + why + ")")
		}
	}
}

// podsSay summarises why the workload's pods are not ready.
func (a *Applier) podsSay(ctx context.Context, workload *unstructured.Unstructured) string {
	match, found, _ := unstructured.NestedStringMap(workload.Object, "spec", "selector", "matchLabels")
	if !found || len(match) == 0 {
		return ""
	}
	pods, err := a.workloads.CoreV1().Pods(workload.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(match).String(), Limit: 100})
	if err != nil {
		return ""
	}
	reasons := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if why := podWhy(&p); why != "" {
			reasons[why]++
		}
	}
	parts := make([]string, 0, len(reasons))
	for why, count := range reasons {
		parts = append(parts, fmt.Sprintf("%d %s", count, why))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// podWhy says why one pod is not ready, or "" when it is, or does not say.
func podWhy(p *corev1.Pod) string {
	if p.Status.Phase == corev1.PodPending {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
				return "Pending: " + c.Message
			}
		}
	}
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			msg := cs.Name + " " + w.Reason
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return msg
		}
	}
	if p.Status.Phase == corev1.PodPending {
		return "Pending"
	}
	return ""
}
