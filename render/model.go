package render

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Model resource, ferry.dev/v1alpha1 (DESIGN.md section 1). A Model is never
// applied itself: render expands it into serving objects and test definitions.
const (
	ModelAPIVersion = "ferry.dev/v1alpha1"
	ModelKind       = "Model"
)

// Runtimes a Model can be served by.
const (
	RuntimeDeployment = "deployment"
	RuntimeKServe     = "kserve"
)

// Labels and annotations render puts on generated objects.
const (
	LabelModel           = "ferry.dev/model"
	AnnotationVersion    = "ferry.dev/model-version"
	AnnotationArtifact   = "ferry.dev/model-artifact"
	AnnotationDigest     = "ferry.dev/model-digest"
	defaultTestTimeout   = "10m"
	defaultServerPort    = 8080
	hpaTargetCPUPercent  = 80
	gpuResourceName      = "nvidia.com/gpu"
	serverContainerName  = "server"
	serverPortName       = "http"
	artifactSchemesInMsg = "s3, gs, https, pvc, oci, hf"
)

// Model is a machine-learning model to serve, in one environment.
type Model struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ModelSpec `json:"spec"`
}

// ModelSpec is what a Model declares. See DESIGN.md section 1 for each field.
type ModelSpec struct {
	Version   string      `json:"version"`
	Artifact  Artifact    `json:"artifact"`
	Format    string      `json:"format"`
	Runtime   string      `json:"runtime,omitempty"`
	Server    *Server     `json:"server,omitempty"`
	Replicas  *Replicas   `json:"replicas,omitempty"`
	Resources *Resources  `json:"resources,omitempty"`
	Canary    *Canary     `json:"canary,omitempty"`
	Tests     []ModelTest `json:"tests,omitempty"`
	Promotion *Promotion  `json:"promotion,omitempty"`
}

// Artifact says where the model's weights are, and what they hash to.
type Artifact struct {
	URI    string `json:"uri"`
	Digest string `json:"digest,omitempty"`
}

// Server is the model server container of runtime=deployment.
type Server struct {
	Image         string          `json:"image,omitempty"`
	Port          int32           `json:"port,omitempty"`
	ReadinessPath string          `json:"readinessPath,omitempty"`
	Args          []string        `json:"args,omitempty"`
	Env           []corev1.EnvVar `json:"env,omitempty"`
}

// Replicas bounds how many copies serve; Max > Min adds an autoscaler.
type Replicas struct {
	Min int32 `json:"min"`
	Max int32 `json:"max,omitempty"`
}

// Resources are the server's compute resources; GPU becomes an nvidia.com/gpu limit.
type Resources struct {
	Requests map[corev1.ResourceName]string `json:"requests,omitempty"`
	Limits   map[corev1.ResourceName]string `json:"limits,omitempty"`
	GPU      int64                          `json:"gpu,omitempty"`
}

// Canary routes a share of traffic to the new revision (runtime=kserve only).
type Canary struct {
	TrafficPercent int64 `json:"trafficPercent"`
}

// ModelTest is a test run as a Job in the environment once the model is healthy.
type ModelTest struct {
	Name    string          `json:"name"`
	Image   string          `json:"image"`
	Command []string        `json:"command,omitempty"`
	Args    []string        `json:"args,omitempty"`
	Env     []corev1.EnvVar `json:"env,omitempty"`
	Timeout string          `json:"timeout,omitempty"`
}

// Promotion lists what must hold before the model moves on.
type Promotion struct {
	RequiredChecks []string `json:"requiredChecks,omitempty"`
}

// runtime returns the Model's runtime with its default applied.
func (m *Model) runtime() string {
	if m.Spec.Runtime == "" {
		return RuntimeDeployment
	}
	return m.Spec.Runtime
}

// replicas returns min and max with their defaults (1, and max = min).
func (m *Model) replicas() (min, max int32) {
	min, max = 1, 0
	if r := m.Spec.Replicas; r != nil {
		min, max = r.Min, r.Max
	}
	if max == 0 {
		max = min
	}
	return min, max
}
