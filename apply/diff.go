package apply

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-gitops/ferry/internal/object"
)

// ObjectDiff is what applying would do to one object.
type ObjectDiff struct {
	Ref Ref
	// Action is Created, Configured, Deleted or Unchanged: what Apply would do.
	Action Action
	// Diff is a unified diff of the object as it is and as it would be (only
	// the fields ferry declares can differ), with Secret values masked.
	Diff string
}

// Diff reports what Apply would do, without changing anything. Objects whose
// desired state and live ferry-owned fields are unchanged cost no request; the
// others are compared with a server-side dry-run apply. When the policy
// refuses any object it returns no diff and every refusal, as Apply would.
func (a *Applier) Diff(ctx context.Context, req Request) ([]ObjectDiff, error) {
	inv := req.Inventory
	p, err := a.plan(ctx, req)
	if err != nil {
		return nil, err
	}
	if refused := errors.Join(p.refused...); refused != nil {
		return nil, refused
	}
	st, live := p.inventory, p.live

	var diffs []ObjectDiff
	var errs []error
	for _, it := range p.items {
		prev, known := st.entries[it.ref.key()]
		l, exists := live[it.ref.key()]
		if known && exists && prev.Hash == it.hash && prev.Fields == l.fields {
			diffs = append(diffs, ObjectDiff{Ref: it.ref, Action: Unchanged})
			continue
		}
		d, err := a.diffOne(ctx, it)
		if err != nil {
			errs = append(errs, &ObjectError{Ref: it.ref, Op: "diff", Msg: scrub(err.Error(), it.obj), Transient: IsTransient(err)})
			continue
		}
		diffs = append(diffs, d)
	}
	for _, e := range p.gone {
		if l, ok := live[e.key()]; ok && inv.owns(l.labels) && l.annotations[AnnotationPrune] != PruneDisabled {
			diffs = append(diffs, ObjectDiff{Ref: e.Ref, Action: Deleted})
		}
	}
	return diffs, errors.Join(errs...)
}

func (a *Applier) diffOne(ctx context.Context, it item) (ObjectDiff, error) {
	m, err := a.mapping(it.ref.gvk())
	if meta.IsNoMatchError(err) {
		return ObjectDiff{Ref: it.ref, Action: Created, Diff: object.Unified(it.ref.String(), nil, it.obj)}, nil // its CRD is not installed yet
	}
	if err != nil {
		return ObjectDiff{}, err
	}
	client := a.resource(m, it.ref.Namespace)
	before, err := client.Get(ctx, it.ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		before = nil
	} else if err != nil {
		return ObjectDiff{}, err
	}
	after, err := client.Apply(ctx, it.ref.Name, it.obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true, DryRun: []string{metav1.DryRunAll}})
	if err != nil && before == nil && apierrors.IsNotFound(err) {
		// Its namespace is created by the same apply: it would be created.
		return ObjectDiff{Ref: it.ref, Action: Created, Diff: object.Unified(it.ref.String(), nil, it.obj)}, nil
	}
	if err != nil {
		return ObjectDiff{}, err
	}
	d := ObjectDiff{Ref: it.ref, Action: Configured}
	if before == nil {
		d.Action = Created
	}
	d.Diff = object.Unified(it.ref.String(), before, after)
	if before != nil && d.Diff == "" {
		d.Action = Unchanged
	}
	return d, nil
}

// scrub removes a Secret's values (as given and base64-decoded) from msg, for
// errors that echo an object's content.
func scrub(msg string, obj *unstructured.Unstructured) string {
	if !object.IsSecret(obj) {
		return msg
	}
	for _, field := range []string{"data", "stringData"} {
		values, _, _ := unstructured.NestedMap(obj.Object, field)
		for _, v := range values {
			s, _ := v.(string)
			if len(s) < 3 {
				continue
			}
			msg = strings.ReplaceAll(msg, s, "***")
			if field == "data" {
				if decoded, err := base64.StdEncoding.DecodeString(s); err == nil && len(decoded) >= 3 {
					msg = strings.ReplaceAll(msg, string(decoded), "***")
				}
			}
		}
	}
	return msg
}
