package apply

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// testJob is a test Job as render.Jobs makes it; outcome "fail" makes the
// testenv cluster fail it.
func testJob(t *testing.T, ns, test, revision, outcome string) *unstructured.Unstructured {
	t.Helper()
	return objects(t, ns, fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: fraud-%s-%s
  labels: {ferry.dev/model: fraud, ferry.dev/test: %s}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 60
  template:
    metadata:
      labels: {ferry.dev/model: fraud, ferry.dev/test: %s}
    spec:
      restartPolicy: Never
      containers:
      - name: test
        image: registry.example/smoke:1
        env: [{name: %s, value: %q}]
`, test, revision[:7], test, test, testenv.FailEnv, outcome))[0]
}

func TestTestsRunAsJobsAndAFailedOneIsNamed(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	rev := "aaaaaaa1111111111111111111111111111111111"
	report, err := a.RunTests(t.Context(), TestRequest{
		Inventory: inv, Revision: rev, Timeout: time.Minute,
		Jobs: []*unstructured.Unstructured{testJob(t, ns, "smoke", rev, "pass"), testJob(t, ns, "accuracy", rev, "fail")},
	})
	require.NoError(t, err, "a failed test is a result, not an error")
	require.Len(t, report.Results, 2)

	smoke, accuracy := report.Results[0], report.Results[1]
	assert.Equal(t, "fraud", smoke.Model)
	assert.Equal(t, "smoke", smoke.Test)
	assert.True(t, smoke.Passed, smoke.String())
	assert.False(t, accuracy.Passed)
	assert.Equal(t, "accuracy", accuracy.Test)
	assert.NotEmpty(t, accuracy.Reason, "the Job's Failed condition says why")
	assert.Equal(t, []TestResult{accuracy}, report.Failed())
	assert.Contains(t, smoke.Logs, "no logs", "kwok pods have no logs: said, not failed")
	t.Log(accuracy.String(), accuracy.Logs)

	job, err := cluster.Client.BatchV1().Jobs(ns).Get(t.Context(), "fraud-smoke-aaaaaaa", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, rev, job.Annotations[AnnotationRev])
	assert.True(t, inv.owns(job.Labels), "labelled as the environment's")
}

func TestAJobOfTheSameRevisionIsReusedNeverDuplicated(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	rev := "bbbbbbb1111111111111111111111111111111111"
	req := TestRequest{Inventory: inv, Revision: rev, Timeout: time.Minute, Jobs: []*unstructured.Unstructured{testJob(t, ns, "smoke", rev, "pass")}}
	first, err := a.RunTests(t.Context(), req)
	require.NoError(t, err)
	job, err := cluster.Client.BatchV1().Jobs(ns).Get(t.Context(), "fraud-smoke-bbbbbbb", metav1.GetOptions{})
	require.NoError(t, err)

	// A restart, or a second replica: a new Applier runs the same tests.
	again, _ := newApplier(t, cluster)
	second, err := again.RunTests(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, first.Results[0].Passed, second.Results[0].Passed)
	same, err := cluster.Client.BatchV1().Jobs(ns).Get(t.Context(), "fraud-smoke-bbbbbbb", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, job.UID, same.UID, "the Job was reused")
	list, err := cluster.Client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, list.Items, 1)
}

func TestFinishedJobsOfOlderRevisionsAreDeleted(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	old, cur := "ccccccc1111111111111111111111111111111111", "ddddddd1111111111111111111111111111111111"
	_, err := a.RunTests(t.Context(), TestRequest{Inventory: inv, Revision: old, Timeout: time.Minute, Jobs: []*unstructured.Unstructured{testJob(t, ns, "smoke", old, "pass")}})
	require.NoError(t, err)
	_, err = a.RunTests(t.Context(), TestRequest{Inventory: inv, Revision: cur, Timeout: time.Minute, Jobs: []*unstructured.Unstructured{testJob(t, ns, "smoke", cur, "pass")}})
	require.NoError(t, err)

	list, err := cluster.Client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, j := range list.Items {
		if j.DeletionTimestamp == nil {
			names = append(names, j.Name)
		}
	}
	assert.Equal(t, []string{"fraud-smoke-ddddddd"}, names)
}

func TestATestThatOutlivesTheRunIsReportedNotFinished(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	rev := "eeeeeee1111111111111111111111111111111111"
	job := testJob(t, ns, "stuck", rev, "pass")
	require.NoError(t, unstructured.SetNestedStringMap(job.Object, map[string]string{"pool": "none"}, "spec", "template", "spec", "nodeSelector"))
	report, err := a.RunTests(t.Context(), TestRequest{Inventory: inventoryFor(ns), Revision: rev, Timeout: 2 * time.Second, Jobs: []*unstructured.Unstructured{job}})
	require.NoError(t, err)
	require.Len(t, report.Results, 1)
	assert.False(t, report.Results[0].Passed)
	assert.Contains(t, report.Results[0].Reason, "did not finish within 2s")
}

func TestAVerificationIsKeptOnTheInventoryBesideItsObjects(t *testing.T) {
	ns := cluster.Namespace(t)
	a, _ := newApplier(t, cluster)
	inv := inventoryFor(ns)
	_, err := a.Apply(t.Context(), Request{Inventory: inv, Revision: "r1", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	none, err := a.Verification(t.Context(), inv)
	require.NoError(t, err)
	assert.Nil(t, none)

	v := Verification{Revision: "r1", Passed: true, Tests: []TestResult{{Model: "fraud", Test: "smoke", Passed: true, Logs: "long log"}},
		Checks: []CheckOutcome{{Name: "eval/accuracy", State: "success"}}, Time: time.Now().UTC().Truncate(time.Second)}
	require.NoError(t, a.SaveVerification(t.Context(), inv, v))

	again, _ := newApplier(t, cluster) // a restart
	got, err := again.Verification(t.Context(), inv)
	require.NoError(t, err)
	require.NotNil(t, got)
	v.Tests[0].Logs = ""
	assert.Equal(t, v, *got, "kept without the logs")
	rev, err := again.Revision(t.Context(), inv)
	require.NoError(t, err)
	assert.Equal(t, "r1", rev, "the inventory itself is untouched")

	// The next apply does not take the record away.
	_, err = a.Apply(t.Context(), Request{Inventory: inv, Revision: "r2", Objects: objects(t, ns, model)})
	require.NoError(t, err)
	got, err = a.Verification(t.Context(), inv)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "r1", got.Revision)
}
