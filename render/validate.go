package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
)

var (
	artifactSchemes = sets.New("s3", "gs", "https", "pvc", "oci", "hf")
	modelFormats    = sets.New("sklearn", "xgboost", "lightgbm", "onnx", "pytorch", "tensorflow", "triton", "huggingface", "mlflow", "custom")
	runtimes        = sets.New(RuntimeDeployment, RuntimeKServe)
	digestPattern   = regexp.MustCompile(`^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$`)
)

// ModelError reports a Model that cannot be expanded: where it came from, which
// Model, and every field that is wrong.
type ModelError struct {
	// Files are the inputs that declare or patch the Model, relative to the checkout.
	Files []string
	// Model is Model/namespace/name.
	Model string
	Errs  field.ErrorList
}

func (e *ModelError) Error() string {
	where := "(source file unknown)"
	if len(e.Files) > 0 {
		where = e.Files[0]
		if len(e.Files) > 1 {
			where += " (patched by " + strings.Join(e.Files[1:], ", ") + ")"
		}
	}
	msgs := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		msgs[i] = fe.Error()
	}
	return fmt.Sprintf("%s: %s: %s", where, e.Model, strings.Join(msgs, "; "))
}

// decodeModel turns a rendered Model object into a validated Model. Unknown
// fields, missing required fields and bad values are all reported at once, each
// with its field path.
func decodeModel(obj *unstructured.Unstructured) (*Model, field.ErrorList) {
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, field.ErrorList{field.InternalError(nil, err)}
	}
	var m Model
	strict, err := kjson.UnmarshalStrict(raw, &m)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(nil, nil, typeErrorMessage(err))}
	}
	var errs field.ErrorList
	for _, s := range strict {
		errs = append(errs, field.Invalid(nil, nil, strings.TrimPrefix(s.Error(), "json: ")+": remove it or check its spelling"))
	}
	return &m, append(errs, validateModel(&m)...)
}

// typeErrorMessage makes encoding/json's type errors read as field errors.
func typeErrorMessage(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("%s: must be a %s, not a %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

func validateModel(m *Model) field.ErrorList {
	var errs field.ErrorList
	meta := field.NewPath("metadata")
	for _, msg := range validation.IsDNS1123Label(m.Name) {
		errs = append(errs, field.Invalid(meta.Child("name"), m.Name, msg))
	}

	spec := field.NewPath("spec")
	s := &m.Spec
	if strings.TrimSpace(s.Version) == "" {
		errs = append(errs, field.Required(spec.Child("version"), "the version PRs, statuses and logs show, e.g. \"1.4.0\""))
	}
	errs = append(errs, validateArtifact(spec.Child("artifact"), &s.Artifact)...)
	if !modelFormats.Has(s.Format) {
		errs = append(errs, field.NotSupported(spec.Child("format"), s.Format, sets.List(modelFormats)))
	}
	if s.Runtime != "" && !runtimes.Has(s.Runtime) {
		errs = append(errs, field.NotSupported(spec.Child("runtime"), s.Runtime, sets.List(runtimes)))
	}

	switch m.runtime() {
	case RuntimeDeployment:
		errs = append(errs, validateDeploymentServer(spec.Child("server"), s.Server)...)
		if s.Canary != nil {
			errs = append(errs, field.Forbidden(spec.Child("canary"), "canary traffic splitting needs runtime: kserve; remove canary or change the runtime"))
		}
	case RuntimeKServe:
		errs = append(errs, validateKServeServer(spec.Child("server"), s.Server)...)
		if c := s.Canary; c != nil && (c.TrafficPercent < 0 || c.TrafficPercent > 100) {
			errs = append(errs, field.Invalid(spec.Child("canary", "trafficPercent"), c.TrafficPercent, "must be between 0 and 100"))
		}
	}

	errs = append(errs, validateReplicas(spec.Child("replicas"), m)...)
	errs = append(errs, validateResources(spec.Child("resources"), s.Resources)...)
	errs = append(errs, validateTests(spec.Child("tests"), s.Tests)...)
	if p := s.Promotion; p != nil {
		for i, c := range p.RequiredChecks {
			if strings.TrimSpace(c) == "" {
				errs = append(errs, field.Required(spec.Child("promotion", "requiredChecks").Index(i), "the name of a GitHub check run or status context"))
			}
		}
	}
	return errs
}

func validateArtifact(path *field.Path, a *Artifact) field.ErrorList {
	var errs field.ErrorList
	if a.URI == "" {
		errs = append(errs, field.Required(path.Child("uri"), "where the model is stored, e.g. s3://bucket/model/1.4.0"))
	} else if u, err := url.Parse(a.URI); err != nil || !artifactSchemes.Has(u.Scheme) || (u.Host == "" && u.Opaque == "") {
		errs = append(errs, field.Invalid(path.Child("uri"), a.URI, "must be a URI with one of the schemes "+artifactSchemesInMsg))
	}
	if a.Digest != "" && !digestPattern.MatchString(a.Digest) {
		errs = append(errs, field.Invalid(path.Child("digest"), a.Digest, "must be sha256:<64 hex digits> or sha512:<128 hex digits>, lower case"))
	}
	return errs
}

func validateDeploymentServer(path *field.Path, s *Server) field.ErrorList {
	if s == nil {
		return field.ErrorList{field.Required(path, "runtime deployment needs a model server: set server.image (and port, readinessPath)")}
	}
	var errs field.ErrorList
	if s.Image == "" {
		errs = append(errs, field.Required(path.Child("image"), "the model server's container image"))
	}
	if s.Port < 0 || s.Port > 65535 {
		errs = append(errs, field.Invalid(path.Child("port"), s.Port, "must be between 1 and 65535"))
	}
	if s.ReadinessPath != "" && !strings.HasPrefix(s.ReadinessPath, "/") {
		errs = append(errs, field.Invalid(path.Child("readinessPath"), s.ReadinessPath, "must be an HTTP path starting with /"))
	}
	return append(errs, validateEnv(path.Child("env"), s.Env)...)
}

// validateKServeServer allows what a KServe predictor passes to its container
// (args, env) and refuses what KServe decides itself (image, port, probe).
func validateKServeServer(path *field.Path, s *Server) field.ErrorList {
	if s == nil {
		return nil
	}
	var errs field.ErrorList
	const why = "runtime kserve picks the server from spec.format; remove it"
	if s.Image != "" {
		errs = append(errs, field.Forbidden(path.Child("image"), why))
	}
	if s.Port != 0 {
		errs = append(errs, field.Forbidden(path.Child("port"), why))
	}
	if s.ReadinessPath != "" {
		errs = append(errs, field.Forbidden(path.Child("readinessPath"), why))
	}
	return append(errs, validateEnv(path.Child("env"), s.Env)...)
}

func validateEnv(path *field.Path, env []corev1.EnvVar) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		if e.Name == "" {
			errs = append(errs, field.Required(path.Index(i).Child("name"), "an environment variable name"))
		}
		if strings.HasPrefix(e.Name, "MODEL_") {
			errs = append(errs, field.Forbidden(path.Index(i).Child("name"), "MODEL_* variables are set by ferry from the Model; rename it"))
		}
	}
	return errs
}

func validateReplicas(path *field.Path, m *Model) field.ErrorList {
	r := m.Spec.Replicas
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	floor := int32(1)
	if m.runtime() == RuntimeKServe {
		floor = 0 // KServe scales to zero
	}
	if r.Min < floor {
		errs = append(errs, field.Invalid(path.Child("min"), r.Min, fmt.Sprintf("must be at least %d", floor)))
	}
	if r.Max != 0 && r.Max < r.Min {
		errs = append(errs, field.Invalid(path.Child("max"), r.Max, "must not be less than min"))
	}
	return errs
}

func validateResources(path *field.Path, r *Resources) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	for _, part := range []struct {
		name string
		list map[corev1.ResourceName]string
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for name, q := range part.list {
			if _, err := resource.ParseQuantity(q); err != nil {
				errs = append(errs, field.Invalid(path.Child(part.name).Key(string(name)), q, "must be a Kubernetes quantity such as 500m, 2 or 1Gi"))
			}
		}
	}
	if r.GPU < 0 {
		errs = append(errs, field.Invalid(path.Child("gpu"), r.GPU, "must not be negative"))
	}
	return errs
}

func validateTests(path *field.Path, tests []ModelTest) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, t := range tests {
		p := path.Index(i)
		for _, msg := range validation.IsDNS1123Label(t.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), t.Name, msg))
		}
		if seen.Has(t.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), t.Name))
		}
		seen.Insert(t.Name)
		if t.Image == "" {
			errs = append(errs, field.Required(p.Child("image"), "the test's container image"))
		}
		if t.Timeout != "" {
			if d, err := time.ParseDuration(t.Timeout); err != nil || d <= 0 {
				errs = append(errs, field.Invalid(p.Child("timeout"), t.Timeout, "must be a positive duration such as 90s or 10m"))
			}
		}
		errs = append(errs, validateEnv(p.Child("env"), t.Env)...)
	}
	return errs
}
