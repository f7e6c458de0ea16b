package apply

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// HealthStatus is an object's readiness, in kstatus's terms.
type HealthStatus string

const (
	Current    HealthStatus = "Current"
	InProgress HealthStatus = "InProgress"
	HealthFail HealthStatus = "Failed"
	NotFound   HealthStatus = "NotFound"
)

// Health is one object's readiness and why.
type Health struct {
	Ref     Ref
	Status  HealthStatus
	Message string
	// live is the object as last seen, for callers inside the package
	// (a test Job's times and conditions).
	live *unstructured.Unstructured
}

func (h Health) String() string {
	if h.Message == "" {
		return fmt.Sprintf("%s: %s", h.Ref, h.Status)
	}
	return fmt.Sprintf("%s: %s: %s", h.Ref, h.Status, h.Message)
}

// health computes an object's readiness: kstatus for every kind, plus the
// model-serving rules KServe's InferenceService needs.
func health(u *unstructured.Unstructured) (HealthStatus, string) {
	if u.GroupVersionKind().Group == "serving.kserve.io" && u.GetKind() == "InferenceService" {
		return inferenceServiceHealth(u)
	}
	res, err := status.Compute(u)
	if err != nil {
		return InProgress, "status not computable yet: " + err.Error()
	}
	msg := res.Message
	if detail := conditionDetail(u); detail != "" {
		msg = strings.TrimSpace(msg + " (" + detail + ")")
	}
	switch res.Status {
	case status.CurrentStatus:
		return Current, res.Message
	case status.FailedStatus:
		return HealthFail, msg
	default:
		return InProgress, msg
	}
}

// inferenceServiceHealth: healthy only when Ready is True and, when KServe
// reports it, the model transition is UpToDate. InvalidSpec and
// BlockedByFailedLoad are failures, with KServe's reason and message.
// status.observedGeneration is not compared with the object's generation:
// KServe copies it from the Deployment it creates, so the two never match.
func inferenceServiceHealth(u *unstructured.Unstructured) (HealthStatus, string) {
	transition, hasTransition, _ := unstructured.NestedString(u.Object, "status", "modelStatus", "transitionStatus")
	switch transition {
	case "InvalidSpec", "BlockedByFailedLoad":
		reason, _, _ := unstructured.NestedString(u.Object, "status", "modelStatus", "lastFailureInfo", "reason")
		message, _, _ := unstructured.NestedString(u.Object, "status", "modelStatus", "lastFailureInfo", "message")
		return HealthFail, strings.TrimSpace(fmt.Sprintf("model %s: %s: %s", transition, reason, message))
	}
	if !conditionTrue(u, "Ready") {
		return InProgress, "Ready is not True" + withDetail(conditionDetail(u))
	}
	if hasTransition && transition != "UpToDate" {
		return InProgress, "model transition " + transition
	}
	return Current, "Ready"
}

func withDetail(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}

// conditionDetail lists the conditions that are not True, with their messages.
func conditionDetail(u *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var parts []string
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["status"] == "True" {
			continue
		}
		part := fmt.Sprintf("%v=%v", cm["type"], cm["status"])
		if msg, _ := cm["message"].(string); msg != "" {
			part += ": " + msg
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}
