package demo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/ferry-gitops/ferry/internal/testenv"
)

// startClusters starts the three clusters (their creation is serialised by
// testenv, the rest overlaps), writes one kubeconfig with a context per
// environment, and returns a client config per environment.
func (d *demo) startClusters(ctx context.Context) (map[string]*rest.Config, error) {
	type started struct {
		env string
		c   *testenv.Cluster
		err error
	}
	results := make(chan started, len(environments))
	for _, env := range environments {
		go func() {
			c, err := testenv.StartCluster(ctx, testenv.ClusterOptions{Name: clusterName + env, Dir: d.opts.state(), Nodes: 3})
			if err == nil {
				d.say("  cluster %-8s up in %.1fs", env, c.Startup.Seconds())
			}
			results <- started{env, c, err}
		}()
	}
	clusters := map[string]*testenv.Cluster{}
	var errs []error
	for range environments {
		r := <-results
		if r.err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", r.env, r.err))
			continue
		}
		clusters[r.env] = r.c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	merged := clientcmdapi.NewConfig()
	configs := map[string]*rest.Config{}
	for env, c := range clusters {
		kc, err := clientcmd.LoadFromFile(c.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: kubeconfig: %w", env, err)
		}
		current := kc.Contexts[kc.CurrentContext]
		if current == nil {
			return nil, fmt.Errorf("cluster %s: its kubeconfig has no current context", env)
		}
		merged.Clusters[env] = kc.Clusters[current.Cluster]
		merged.AuthInfos[env] = kc.AuthInfos[current.AuthInfo]
		merged.Contexts[env] = &clientcmdapi.Context{Cluster: env, AuthInfo: env}
		configs[env] = c.Config
	}
	merged.CurrentContext = "dev"
	d.kubeconfig = filepath.Join(d.opts.state(), "kubeconfig")
	if err := clientcmd.WriteToFile(*merged, d.kubeconfig); err != nil {
		return nil, fmt.Errorf("write %s: %w", d.kubeconfig, err)
	}
	return configs, nil
}

func deleteCluster(ctx context.Context, state, env string) error {
	return testenv.DeleteCluster(ctx, state, clusterName+env)
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRD creates the InferenceService CRD and waits until it is Established.
func installCRD(ctx context.Context, cfg *rest.Config) error {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(testenv.InferenceServiceCRD), &crd.Object); err != nil {
		return err
	}
	if _, err := client.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the InferenceService CRD: %w", err)
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := client.Resource(crdResource).Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}
