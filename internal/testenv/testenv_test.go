package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

func TestClusterRunsDeploymentsToAvailableAndJobsToCompletion(t *testing.T) {
	c := NewCluster(t)
	t.Logf("cluster %s started in %s", c.Name, c.Startup)
	ns := c.Namespace(t)
	ctx := t.Context()

	labels := map[string]string{"app": "server"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "registry.example/server:1"}}},
			},
		},
	}
	_, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	require.NoError(t, err)

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: ns},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "smoke", Image: "registry.example/smoke:1"}},
				},
			},
		},
	}
	_, err = c.Client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)

	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "server", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
				return d.Status.AvailableReplicas == 2, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "Deployment never became Available")

	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := c.Client.BatchV1().Jobs(ns).Get(ctx, "smoke", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return j.Status.Succeeded == 1, nil
	})
	require.NoError(t, err, "Job never completed")
}

func TestTwoClustersRunAtOnceWithTheirOwnState(t *testing.T) {
	var (
		wg       sync.WaitGroup
		clusters [2]*Cluster
		errs     [2]error
	)
	for i := range clusters {
		wg.Go(func() {
			clusters[i], errs[i] = StartCluster(t.Context(), ClusterOptions{Nodes: 1})
		})
	}
	wg.Wait()
	for _, c := range clusters {
		if c != nil {
			t.Cleanup(func() { assert.NoError(t, c.Stop()) })
		}
	}
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.NotEqual(t, clusters[0].Config.Host, clusters[1].Config.Host)

	ns := clusters[0].Namespace(t)
	_, err := clusters[1].Client.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
	assert.Error(t, err, "a namespace created in one cluster must not exist in the other")
}

func TestClusterNeverTouchesTheUsersKubeconfig(t *testing.T) {
	home := t.TempDir()
	bin, err := BinDir() // resolve with the real HOME before replacing it
	require.NoError(t, err)
	t.Setenv("FERRY_TOOLS_BIN", bin)
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")

	c := NewCluster(t)
	assert.NoFileExists(t, filepath.Join(home, ".kube", "config"))
	assert.FileExists(t, c.Kubeconfig)
}

func TestGitServerAcceptsPushesAndServesClonesToGoGit(t *testing.T) {
	srv := NewGitServer(t, GitServerOptions{Username: "x-access-token", Password: "s3cret"})
	url := srv.CreateRepo(t, "models")

	wt := srv.Clone(t, "models")
	wt.Write(t, "models/fraud/model.yaml", "kind: Model\n")
	sha := wt.Commit(t, "add fraud model")
	wt.Push(t)

	dir := t.TempDir()
	repo, err := git.PlainCloneContext(t.Context(), dir, false, &git.CloneOptions{
		URL:  url,
		Auth: &http.BasicAuth{Username: "x-access-token", Password: "s3cret"},
	})
	require.NoError(t, err)
	head, err := repo.Head()
	require.NoError(t, err)
	assert.Equal(t, sha, head.Hash().String())
	content, err := os.ReadFile(filepath.Join(dir, "models", "fraud", "model.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "kind: Model\n", string(content))

	_, err = git.PlainCloneContext(t.Context(), t.TempDir(), false, &git.CloneOptions{
		URL:  url,
		Auth: &http.BasicAuth{Username: "x-access-token", Password: "wrong"},
	})
	assert.Error(t, err, "a wrong password must be refused")
}

func TestNamespaceNameIsAValidDNSLabel(t *testing.T) {
	cases := map[string]string{
		"TestApply/creates_objects":        "testapply-creates-objects-7",
		"Test_" + string(make([]byte, 80)): "test",
	}
	for in, prefix := range cases {
		got := namespaceName(in, 7)
		assert.LessOrEqual(t, len(got), 63)
		assert.Regexp(t, `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, got)
		assert.Contains(t, got, prefix)
	}
}

func TestMissingBinariesFailWithTheCommandThatBuildsThem(t *testing.T) {
	t.Setenv("FERRY_TOOLS_BIN", t.TempDir())
	_, err := StartCluster(t.Context(), ClusterOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "make tools")
	assert.NotContains(t, err.Error(), "\n", "one line")
}

func TestTheClusterHasRoomForManyServices(t *testing.T) {
	c := NewCluster(t)
	ns := c.Namespace(t)
	for i := range 300 {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i), Namespace: ns},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}
		_, err := c.Client.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{})
		require.NoError(t, err, "service %d", i)
	}
}
