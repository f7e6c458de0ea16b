package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Labels of the Jobs that run a Model's tests (render.Jobs puts them there).
const (
	labelModel = "ferry.dev/model"
	labelTest  = "ferry.dev/test"
	// labelJobName is what the Job controller labels a Job's pods with.
	labelJobName = "batch.kubernetes.io/job-name"
)

// logLines is how much of a test's log a result keeps.
const logLines = 50

// TestRequest is one run of an environment's tests at one revision.
type TestRequest struct {
	Inventory Inventory
	Revision  string
	// Jobs are the tests as Jobs (render.Jobs), one per test, named after
	// their model, test and revision.
	Jobs []*unstructured.Unstructured
	// Timeout bounds the whole run; each Job is also stopped by Kubernetes at
	// its own activeDeadlineSeconds.
	Timeout time.Duration
}

// TestResult is the outcome of one test.
type TestResult struct {
	Model string `json:"model"`
	Test  string `json:"test"`
	Job   Ref    `json:"job"`
	// Passed is true when the Job completed.
	Passed bool `json:"passed"`
	// Reason says why a test did not pass: the Job's Failed condition, or
	// that it did not finish in time.
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"duration"`
	// Logs are the last 50 lines of the test's pod, or a note in brackets
	// saying why there are none.
	Logs string `json:"logs,omitempty"`
}

func (r TestResult) String() string {
	outcome := "passed"
	if !r.Passed {
		outcome = "failed"
	}
	s := fmt.Sprintf("test %s/%s %s in %s", r.Model, r.Test, outcome, r.Duration.Round(time.Millisecond))
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

// TestReport is every test's outcome, in the order of the request's Jobs.
type TestReport struct {
	Results []TestResult
}

// Failed returns the tests that did not pass.
func (r *TestReport) Failed() []TestResult {
	var out []TestResult
	for _, t := range r.Results {
		if !t.Passed {
			out = append(out, t)
		}
	}
	return out
}

// RunTests runs an environment's tests as Jobs and waits until each has
// completed or failed, or req.Timeout passes. A Job that already exists for
// the revision (a restart, a second replica) is reused, never created twice,
// so a test runs once per revision. Jobs carry the inventory's labels but are
// not part of its inventory: they are never pruned with the environment.
// Jobs of older revisions are deleted once they have finished.
//
// It returns an error only when the tests could not be run or observed (the
// API server refused a Job, or could not be reached): a test that fails is a
// result, not an error.
func (a *Applier) RunTests(ctx context.Context, req TestRequest) (*TestReport, error) {
	inv := req.Inventory
	if err := inv.validate(); err != nil {
		return nil, err
	}
	jobs := make([]*unstructured.Unstructured, 0, len(req.Jobs))
	for _, j := range req.Jobs {
		job, err := a.startJob(ctx, inv, j, req.Revision)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}

	waitCtx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	outcomes := a.followTests(waitCtx, inv, jobs)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("inventory %s: tests: %w", inv, err)
	}

	report := &TestReport{}
	for i, o := range outcomes {
		j := jobs[i]
		res := TestResult{Model: j.GetLabels()[labelModel], Test: j.GetLabels()[labelTest], Job: refOf(j), Passed: o.passed, Duration: o.duration}
		switch {
		case !o.finished:
			res.Reason = fmt.Sprintf("did not finish within %s (%s)", req.Timeout, o.state)
		case !o.passed:
			res.Reason = o.reason
		}
		res.Logs = a.testLogs(ctx, res.Job)
		report.Results = append(report.Results, res)
	}
	if err := a.deleteOldTestJobs(ctx, inv, jobs, req.Revision); err != nil {
		return report, err
	}
	return report, nil
}

// startJob creates the test's Job, or finds the one that already runs it.
func (a *Applier) startJob(ctx context.Context, inv Inventory, j *unstructured.Unstructured, revision string) (*unstructured.Unstructured, error) {
	job, _, err := inv.desired(j, revision)
	if err != nil {
		return nil, err
	}
	ref := refOf(job)
	m, err := a.mapping(ref.gvk())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace && job.GetNamespace() == "" {
		job.SetNamespace(defaultNamespace)
	}
	client := a.resource(m, job.GetNamespace())
	_, err = client.Create(ctx, job, metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case err == nil:
	case apierrors.IsAlreadyExists(err):
		// The same test at the same revision: reuse it, whatever its state.
		existing, getErr := client.Get(ctx, job.GetName(), metav1.GetOptions{})
		if getErr != nil {
			return nil, &ObjectError{Ref: refOf(job), Msg: "read existing test Job: " + getErr.Error(), Transient: true}
		}
		if !inv.owns(existing.GetLabels()) {
			return nil, &ObjectError{Ref: refOf(job), Msg: "a Job of this name exists and is not this environment's; rename the test or delete the Job"}
		}
	default:
		return nil, &ObjectError{Ref: refOf(job), Msg: "create test Job: " + scrub(err.Error(), job), Transient: transient(err)}
	}
	return job, nil
}

// testLogs returns the last lines of the test's pod, or why there are none.
// Clusters without a kubelet behind their nodes (kwok) have no logs: that is
// said, not treated as a failure.
func (a *Applier) testLogs(ctx context.Context, job Ref) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pods, err := a.workloads.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelJobName + "=" + job.Name})
	if err != nil {
		return "(no logs: list the test's pods: " + err.Error() + ")"
	}
	if len(pods.Items) == 0 {
		return "(no logs: the test's pod is gone)"
	}
	pod := pods.Items[len(pods.Items)-1]
	stream, err := a.workloads.CoreV1().Pods(job.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
		Container: "test", TailLines: new(int64(logLines)), LimitBytes: new(int64(64 << 10)),
	}).Stream(ctx)
	if err != nil {
		return "(no logs: the cluster has none for pod " + pod.Name + ": " + firstLine(err.Error()) + ")"
	}
	defer stream.Close()
	b, err := io.ReadAll(io.LimitReader(stream, 64<<10))
	if err != nil && !errors.Is(err, io.EOF) {
		return "(no logs: read pod " + pod.Name + ": " + err.Error() + ")"
	}
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// deleteOldTestJobs deletes the finished test Jobs of this inventory that ran
// another revision; Jobs still running are left to finish.
func (a *Applier) deleteOldTestJobs(ctx context.Context, inv Inventory, current []*unstructured.Unstructured, revision string) error {
	namespaces := map[string]bool{}
	for _, j := range current {
		namespaces[j.GetNamespace()] = true
	}
	m, err := a.mapping(schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"})
	if err != nil {
		return err
	}
	var errs []error
	policy := metav1.DeletePropagationBackground
	for ns := range namespaces {
		client := a.resource(m, ns)
		list, err := client.List(ctx, metav1.ListOptions{LabelSelector: inv.selector() + "," + labelTest})
		if err != nil {
			errs = append(errs, fmt.Errorf("inventory %s: list test Jobs in %s: %w", inv, ns, err))
			continue
		}
		// A Job whose pod has ended is finished, even before the Job
		// controller says so (see followTests).
		ended := map[string]bool{}
		if pods, err := a.workloads.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labelTest}); err == nil {
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
					ended[p.Labels[labelJobName]] = true
				}
			}
		}
		for i := range list.Items {
			j := &list.Items[i]
			if j.GetAnnotations()[AnnotationRev] == revision {
				continue
			}
			if !finished(j) && !ended[j.GetName()] {
				continue
			}
			uid := j.GetUID()
			err := client.Delete(ctx, j.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				errs = append(errs, fmt.Errorf("%s: delete old test Job: %w", refOf(j), err))
			}
		}
	}
	return errors.Join(errs...)
}

// finished reports whether a Job (as the dynamic client reads it) has
// completed or failed.
func finished(job *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(job.Object, "status", "conditions")
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["status"] == "True" && (cm["type"] == "Complete" || cm["type"] == "Failed") {
			return true
		}
	}
	return false
}
