package render

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"math"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/ferry-gitops/ferry/internal/object"
)

// LabelTest names the test a Job runs; with LabelModel it identifies the
// Jobs of one Model's test across revisions.
const LabelTest = "ferry.dev/test"

// maxJobName keeps a Job's name usable as the value of the job-name label
// Kubernetes puts on its pods (a label value has at most 63 characters).
const maxJobName = 63

// Jobs returns the Jobs that run tests at revision, in the order of tests.
// They are not part of Result.Objects, because they are run once an
// environment is healthy rather than applied with it, and because their names
// carry the revision while a Result is shared by every revision with the same
// content.
//
// Each Job is named JobName(model, test, revision), carries the Model's labels
// and annotations plus ferry.dev/model and ferry.dev/test, runs once
// (backoffLimit 0, restartPolicy Never) and is stopped by Kubernetes after the
// test's timeout (activeDeadlineSeconds). Its container gets the test's
// environment plus MODEL_NAME, MODEL_VERSION, MODEL_URI, MODEL_DIGEST and,
// for runtime deployment, MODEL_ENDPOINT.
func Jobs(tests []Test, revision string) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(tests))
	for _, t := range tests {
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(job(t, revision))
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: content}
		pruneEmpty(u.Object)
		out = append(out, u)
	}
	return out, nil
}

func job(t Test, revision string) *batchv1.Job {
	labels := maps.Clone(t.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelModel] = t.Model
	labels[LabelTest] = t.Name
	annotations := maps.Clone(t.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationVersion] = t.Version
	annotations[AnnotationArtifact] = t.Artifact.URI
	if t.Artifact.Digest != "" {
		annotations[AnnotationDigest] = t.Artifact.Digest
	}

	env := append([]corev1.EnvVar{}, t.Env...)
	env = append(env,
		corev1.EnvVar{Name: "MODEL_NAME", Value: t.Model},
		corev1.EnvVar{Name: "MODEL_VERSION", Value: t.Version},
		corev1.EnvVar{Name: "MODEL_URI", Value: t.Artifact.URI},
		corev1.EnvVar{Name: "MODEL_DIGEST", Value: t.Artifact.Digest},
	)
	if t.Endpoint != "" {
		env = append(env, corev1.EnvVar{Name: "MODEL_ENDPOINT", Value: t.Endpoint})
	}
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name: JobName(t.Model, t.Name, revision), Namespace: t.Namespace,
			Labels: labels, Annotations: annotations,
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To[int32](0),
			ActiveDeadlineSeconds: ptr.To(int64(math.Ceil(t.Timeout.Seconds()))),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelModel: t.Model, LabelTest: t.Name}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "test", Image: t.Image, Command: t.Command, Args: t.Args, Env: env,
					}},
				},
			},
		},
	}
}

// JobName is the name of the Job that runs one test of a model at a
// revision: <model>-<test>-<short sha>. When that is longer than 63
// characters, the model and test part is cut and followed by a hash of the
// whole, so two tests never share a name.
func JobName(model, test, revision string) string {
	suffix := "-" + object.ShortSHA(revision)
	name := model + "-" + test
	if len(name)+len(suffix) <= maxJobName {
		return name + suffix
	}
	sum := sha256.Sum256([]byte(model + "\x00" + test))
	hash := "-" + hex.EncodeToString(sum[:4])
	keep := maxJobName - len(suffix) - len(hash)
	return strings.TrimRight(name[:keep], "-") + hash + suffix
}
