package render

import (
	"fmt"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Test is one Model test, ready for the verify step to run as a Job in the
// environment (see Jobs). It is never applied with the environment.
type Test struct {
	Model     string
	Namespace string
	// Version and Artifact are what the test exercises.
	Version  string
	Artifact Artifact
	// Endpoint is the in-cluster URL of the model server, for runtime
	// deployment ("" for kserve, whose URL KServe decides).
	Endpoint string
	// Labels and Annotations are the Model's own, which flow to the Job as
	// they do to every generated object.
	Labels      map[string]string
	Annotations map[string]string
	Name        string
	Image       string
	Command     []string
	Args        []string
	Env         []corev1.EnvVar
	Timeout     time.Duration
}

// expand turns a validated Model into the objects that serve it, and its tests.
func expand(m *Model) ([]*unstructured.Unstructured, []Test, error) {
	if m.runtime() == RuntimeKServe {
		return []*unstructured.Unstructured{inferenceService(m)}, tests(m), nil
	}
	typed := []runtime.Object{deployment(m), service(m)}
	if min, max := m.replicas(); max > min {
		typed = append(typed, autoscaler(m, min, max))
	}
	objs := make([]*unstructured.Unstructured, 0, len(typed))
	for _, t := range typed {
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(t)
		if err != nil {
			return nil, nil, fmt.Errorf("Model/%s/%s: convert: %w", m.Namespace, m.Name, err)
		}
		u := &unstructured.Unstructured{Object: content}
		pruneEmpty(u.Object)
		objs = append(objs, u)
	}
	return objs, tests(m), nil
}

// objectMeta is the metadata every generated object carries: the Model's own
// labels and annotations, the model label, and the version and artifact.
func objectMeta(m *Model) metav1.ObjectMeta {
	labels := maps.Clone(m.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelModel] = m.Name
	annotations := maps.Clone(m.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(annotations, modelAnnotations(m))
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, Labels: labels, Annotations: annotations}
}

// modelAnnotations record what is served. On the pod template they make a new
// version or artifact roll the pods even when nothing else changed.
func modelAnnotations(m *Model) map[string]string {
	a := map[string]string{
		AnnotationVersion:  m.Spec.Version,
		AnnotationArtifact: m.Spec.Artifact.URI,
	}
	if m.Spec.Artifact.Digest != "" {
		a[AnnotationDigest] = m.Spec.Artifact.Digest
	}
	return a
}

func selector(m *Model) map[string]string {
	return map[string]string{LabelModel: m.Name}
}

func deployment(m *Model) *appsv1.Deployment {
	s := m.Spec.Server
	port := s.Port
	if port == 0 {
		port = defaultServerPort
	}
	env := append([]corev1.EnvVar{}, s.Env...)
	env = append(env,
		corev1.EnvVar{Name: "MODEL_NAME", Value: m.Name},
		corev1.EnvVar{Name: "MODEL_VERSION", Value: m.Spec.Version},
		corev1.EnvVar{Name: "MODEL_URI", Value: m.Spec.Artifact.URI},
		corev1.EnvVar{Name: "MODEL_DIGEST", Value: m.Spec.Artifact.Digest},
	)
	container := corev1.Container{
		Name:      serverContainerName,
		Image:     s.Image,
		Args:      s.Args,
		Ports:     []corev1.ContainerPort{{Name: serverPortName, ContainerPort: port, Protocol: corev1.ProtocolTCP}},
		Env:       env,
		Resources: resources(m.Spec.Resources),
	}
	if s.ReadinessPath != "" {
		container.ReadinessProbe = &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: s.ReadinessPath, Port: intstr.FromString(serverPortName),
			}},
		}
	}

	podLabels := maps.Clone(m.Labels)
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	maps.Copy(podLabels, selector(m))
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(m),
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector(m)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: modelAnnotations(m)},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{container}},
			},
		},
	}
	// An autoscaler owns replicas when there is one; declaring them would
	// fight it on every apply.
	if min, max := m.replicas(); max == min {
		d.Spec.Replicas = ptr.To(min)
	}
	return d
}

func service(m *Model) *corev1.Service {
	port := m.Spec.Server.Port
	if port == 0 {
		port = defaultServerPort
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(m),
		Spec: corev1.ServiceSpec{
			Selector: selector(m),
			Ports: []corev1.ServicePort{{
				Name: serverPortName, Port: port, TargetPort: intstr.FromString(serverPortName), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// autoscaler scales the Deployment on CPU, which is what a model server without
// custom metrics can be scaled on.
func autoscaler(m *Model, min, max int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: objectMeta(m),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: m.Name},
			MinReplicas:    ptr.To(min),
			MaxReplicas:    max,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](hpaTargetCPUPercent)},
				},
			}},
		},
	}
}

// resources converts validated quantities; gpu becomes an nvidia.com/gpu limit
// (Kubernetes sets the request of an extended resource equal to its limit).
func resources(r *Resources) corev1.ResourceRequirements {
	var out corev1.ResourceRequirements
	if r == nil {
		return out
	}
	out.Requests = quantities(r.Requests)
	out.Limits = quantities(r.Limits)
	if r.GPU > 0 {
		if out.Limits == nil {
			out.Limits = corev1.ResourceList{}
		}
		out.Limits[gpuResourceName] = *resource.NewQuantity(r.GPU, resource.DecimalSI)
	}
	return out
}

func quantities(in map[corev1.ResourceName]string) corev1.ResourceList {
	if len(in) == 0 {
		return nil
	}
	out := corev1.ResourceList{}
	for name, q := range in {
		out[name] = resource.MustParse(q) // validated by validateResources
	}
	return out
}

// inferenceService builds a serving.kserve.io/v1beta1 InferenceService. It is
// written as a map: KServe's Go types would pull its whole dependency tree in.
func inferenceService(m *Model) *unstructured.Unstructured {
	meta := objectMeta(m)
	model := map[string]any{
		"modelFormat": map[string]any{"name": m.Spec.Format},
		"storageUri":  m.Spec.Artifact.URI,
	}
	if res := resourcesMap(m.Spec.Resources); len(res) > 0 {
		model["resources"] = res
	}
	if s := m.Spec.Server; s != nil {
		if len(s.Args) > 0 {
			model["args"] = toAnySlice(s.Args)
		}
		if len(s.Env) > 0 {
			env, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(&struct {
				Env []corev1.EnvVar `json:"env"`
			}{s.Env})
			model["env"] = env["env"]
		}
	}
	min, max := m.replicas()
	predictor := map[string]any{
		"minReplicas": int64(min),
		"maxReplicas": int64(max),
		"model":       model,
	}
	if c := m.Spec.Canary; c != nil {
		predictor["canaryTrafficPercent"] = c.TrafficPercent
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1beta1",
		"kind":       "InferenceService",
		"metadata":   map[string]any{"name": meta.Name},
		"spec":       map[string]any{"predictor": predictor},
	}}
	if meta.Namespace != "" {
		u.SetNamespace(meta.Namespace)
	}
	u.SetLabels(meta.Labels)
	u.SetAnnotations(meta.Annotations)
	return u
}

func resourcesMap(r *Resources) map[string]any {
	req := resources(r)
	content, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(&req)
	pruneEmpty(content)
	return content
}

func toAnySlice(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

func tests(m *Model) []Test {
	out := make([]Test, 0, len(m.Spec.Tests))
	endpoint := ""
	if m.runtime() == RuntimeDeployment {
		port := m.Spec.Server.Port
		if port == 0 {
			port = defaultServerPort
		}
		ns := m.Namespace
		if ns == "" {
			ns = "default" // where apply puts namespaced objects without one
		}
		endpoint = fmt.Sprintf("http://%s.%s.svc:%d", m.Name, ns, port)
	}
	for _, t := range m.Spec.Tests {
		timeout := t.Timeout
		if timeout == "" {
			timeout = defaultTestTimeout
		}
		d, _ := time.ParseDuration(timeout) // validated by validateTests
		out = append(out, Test{
			Model: m.Name, Namespace: m.Namespace, Version: m.Spec.Version, Artifact: m.Spec.Artifact,
			Endpoint: endpoint, Labels: maps.Clone(m.Labels), Annotations: maps.Clone(m.Annotations),
			Name: t.Name, Image: t.Image, Command: t.Command, Args: t.Args, Env: t.Env, Timeout: d,
		})
	}
	return out
}

// pruneEmpty drops the nil values, empty maps and creationTimestamp: null that
// typed-to-unstructured conversion leaves, so output is what a person writes.
func pruneEmpty(m map[string]any) {
	for k, v := range m {
		switch val := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneEmpty(val)
			if len(val) == 0 {
				delete(m, k)
			}
		case []any:
			for _, item := range val {
				if im, ok := item.(map[string]any); ok {
					pruneEmpty(im)
				}
			}
		}
	}
}
