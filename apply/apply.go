package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Request is one apply of an environment.
type Request struct {
	Inventory Inventory
	// Revision is the commit being applied; objects that change carry it in
	// the ferry.dev/revision annotation.
	Revision string
	// Objects are the rendered objects, in apply order.
	Objects []*unstructured.Unstructured
	// AllowMassDelete confirms a prune the guard would refuse (ferry sync --allow-mass-delete).
	AllowMassDelete bool
	// Policy is what the environment may write, checked before any request
	// that writes (see Policy). nil checks only what is always refused:
	// ferry's namespace and objects of another inventory.
	Policy *Policy
}

// item is one object on its way to the cluster.
type item struct {
	obj   *unstructured.Unstructured
	ref   Ref
	hash  string
	early bool // a Namespace or CRD: applied before everything else
}

// Apply makes the cluster hold req.Objects, with server-side apply as field
// manager "ferry", forcing ownership of the fields ferry declares. Objects
// whose desired state and ferry-owned live fields are both unchanged since the
// last apply cost no request: a resync of an unchanged environment costs one
// metadata LIST per kind. Drifted objects are re-applied ("configured (drift)").
// Objects in the previous inventory that are no longer rendered are pruned
// (see prune), but only when every object of the set applied and every CRD of
// it is Established: otherwise nothing is pruned, each is reported Skipped and
// stays in the inventory, so renaming v1 to v2 never deletes v1 while v2 is
// refused. Objects the inventory does not hold yet are added to it before
// they are created, so that an apply cut short (a killed process, a lost API
// server) still owns what it created, and prunes it once it is no longer
// rendered. A failing object does not stop the others: the ChangeSet covers
// every object and the error joins every failure, each naming its object or
// the inventory (classify it with IsTransient and IsMassDelete).
//
// The policy is checked first: when it refuses any object, nothing of the set
// is applied and nothing is pruned, not a single write is sent, the ChangeSet
// reports each refused object Failed and the others Skipped, and the error
// joins every refusal (bad input).
func (a *Applier) Apply(ctx context.Context, req Request) (*ChangeSet, error) {
	inv := req.Inventory
	p, err := a.plan(ctx, req)
	if err != nil {
		return nil, err
	}
	if refused := errors.Join(p.refused...); refused != nil {
		return p.refusal(), refused
	}
	st, items, live := p.inventory, p.items, p.live
	guardErr := a.guard(ctx, inv, st, len(p.gone), req)
	if p.writes(guardErr == nil) {
		deadline, ok := ctx.Deadline()
		if !ok || deadline.After(time.Now().Add(defaultHold)) {
			deadline = time.Now().Add(defaultHold)
		}
		// One write holds the inventory and claims the objects it does not
		// hold yet: an item it does not know always makes the plan write.
		if err := a.hold(ctx, inv, st, items, deadline); err != nil {
			return nil, err
		}
	}

	changes := make([]Change, len(items))
	entries := make([]*entry, len(items))
	errs := make([]error, len(items))
	run := func(early bool) {
		g := new(errgroup.Group)
		g.SetLimit(a.concurrency)
		for i := range items {
			if items[i].early != early {
				continue
			}
			g.Go(func() error {
				changes[i], entries[i], errs[i] = a.applyOne(ctx, items[i], st.entries[items[i].ref.key()], live, guardErr != nil)
				return nil
			})
		}
		g.Wait()
	}
	run(true)
	establishErr := a.waitEstablished(ctx, items, changes)
	run(false)

	next := make(map[string]entry, len(items))
	failed := 0
	for i, it := range items {
		switch {
		case entries[i] != nil:
			next[it.ref.key()] = *entries[i]
		case errs[i] != nil:
			failed++
			if prev, ok := st.entries[it.ref.key()]; ok {
				next[it.ref.key()] = prev // keep it owned: retried next time
			}
		}
	}
	cs := &ChangeSet{Changes: changes}
	if reason := pruneBlocked(guardErr, failed, establishErr); reason != "" {
		for _, e := range p.gone {
			next[e.key()] = e // nothing pruned: still ours
			cs.Changes = append(cs.Changes, Change{Ref: e.Ref, Action: Skipped, Reason: reason})
		}
	} else {
		pruned, kept, pruneErrs := a.prune(ctx, inv, p)
		cs.Changes = append(cs.Changes, pruned...)
		for _, e := range kept {
			next[e.key()] = e
		}
		errs = append(errs, pruneErrs...)
	}
	if err := a.saveInventory(ctx, inv, st, next, req.Revision); err != nil {
		errs = append(errs, err)
		if ctx.Err() != nil {
			a.release(ctx, inv, st)
		}
	}
	joined := errors.Join(append([]error{guardErr, establishErr}, errs...)...)
	if joined == nil {
		cs.Health = listedHealth(cs, items, live)
	}
	return cs, joined
}

// listedHealth is the items' readiness as observed before the apply, when
// the apply changed none of them and pruned nothing; nil otherwise.
func listedHealth(cs *ChangeSet, items []item, live map[string]liveObject) *HealthReport {
	if len(cs.Changes) != len(items) {
		return nil // something was pruned, or skipped
	}
	report := &HealthReport{Objects: make([]Health, len(items))}
	for i, it := range items {
		l, ok := live[it.ref.key()]
		if cs.Changes[i].Action != Unchanged || !ok {
			return nil
		}
		report.Objects[i] = l.health
	}
	return report
}

// defaultHold bounds a hold: the deadline of the apply's context, at most
// this long (the engine gives an apply 10 minutes, ApplyTimeout).
const defaultHold = 10 * time.Minute

// writes reports whether applying the plan would write to the cluster:
// an object to create, change or correct, or (when pruning may go ahead) one
// to prune. An idle resync writes nothing, and so takes no hold.
func (p *plan) writes(mayPrune bool) bool {
	for _, it := range p.items {
		prev, known := p.inventory.entries[it.ref.key()]
		l, exists := p.live[it.ref.key()]
		if !known || !exists || l.deleting || prev.Hash != it.hash || prev.Fields != l.fields {
			return true
		}
	}
	return mayPrune && len(p.gone) > 0
}

// pruneBlocked says why nothing may be pruned this round, or "" when the
// prune may go ahead: a prune follows only a set that applied in full.
func pruneBlocked(guardErr error, failed int, establishErr error) string {
	switch {
	case guardErr != nil:
		return "not pruned: the mass-delete guard refused this prune"
	case failed == 1:
		return "not pruned: 1 object of this set failed to apply"
	case failed > 1:
		return fmt.Sprintf("not pruned: %d objects of this set failed to apply", failed)
	case establishErr != nil:
		return "not pruned: a CustomResourceDefinition of this set is not Established"
	}
	return ""
}

// plan is what Apply and Diff both start from: the inventory as stored, the
// desired items, the inventory's objects no longer rendered, what one LIST
// per kind says about the live objects of both, and the no-longer-rendered
// kinds the cluster stopped serving because ferry removes their CRD. When
// the policy refuses any object, refused holds each refusal by the index of
// its target and items is empty: nothing may be written.
type plan struct {
	inventory *inventoryState
	targets   []target
	refused   []error
	items     []item
	gone      []entry
	live      map[string]liveObject
	unserved  map[schema.GroupKind]unserved
}

// plan reads, and never writes, until the policy has allowed the set: the
// Secret-hash key, which a write may create, is only needed once it has.
func (a *Applier) plan(ctx context.Context, req Request) (*plan, error) {
	inv := req.Inventory
	if err := inv.validate(); err != nil {
		return nil, err
	}
	targets, err := a.resolve(req.Objects)
	if err != nil {
		return nil, err
	}
	refused := checkPolicy(req.Policy, inv, targets)
	st, err := a.loadInventory(ctx, inv)
	if err != nil {
		return nil, errors.Join(append(refused, err)...)
	}
	p := &plan{inventory: st, targets: targets}
	current := make(map[string]bool, len(targets))
	refs := make([]Ref, len(targets))
	for i, t := range targets {
		current[t.ref.key()] = true
		refs[i] = t.ref
	}
	for k, e := range st.entries {
		if !current[k] {
			p.gone = append(p.gone, e)
		}
	}
	if p.live, p.unserved, err = a.observe(ctx, inv, refs, p.gone, st.entries); err != nil {
		return nil, errors.Join(append(refused, err)...)
	}
	if err := a.checkLive(ctx, inv, req.Policy, targets, p.live, refused); err != nil {
		return nil, errors.Join(append(refused, err)...)
	}
	if errors.Join(refused...) != nil {
		p.refused = refused
		return p, nil
	}
	if p.items, err = a.prepare(ctx, inv, req, targets); err != nil {
		return nil, err
	}
	return p, nil
}

func (inv Inventory) validate() error {
	for field, v := range map[string]string{"repository": inv.Repository, "environment": inv.Environment} {
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 || v == "" {
			return fmt.Errorf("inventory %s: the %s name %q must be a valid label value (63 characters of letters, digits, '-', '_', '.')", inv, field, v)
		}
	}
	return nil
}

// prepare turns rendered objects into desired items, placed where resolve
// found the cluster puts them. The hash is of the object as rendered (its
// namespace not filled in), as inventories have always stored it.
func (a *Applier) prepare(ctx context.Context, inv Inventory, req Request, targets []target) ([]item, error) {
	items := make([]item, 0, len(req.Objects))
	hash := func(u *unstructured.Unstructured) (string, error) { return a.hash(ctx, u) }
	for i, o := range req.Objects {
		obj, sum, err := inv.desiredHashed(o, req.Revision, hash)
		if err != nil {
			return nil, err
		}
		ref := targets[i].ref
		obj.SetNamespace(ref.Namespace)
		items = append(items, item{obj: obj, ref: ref, hash: sum, early: ref.early()})
	}
	return items, nil
}

// applyOne applies one object unless it is unchanged, and returns its change,
// its new inventory entry (nil when it failed) and its error.
func (a *Applier) applyOne(ctx context.Context, it item, prev entry, live map[string]liveObject, noDeletes bool) (Change, *entry, error) {
	l, exists := live[it.ref.key()]
	known := prev.Hash != ""
	if known && exists && !l.deleting && prev.Hash == it.hash && prev.Fields == l.fields {
		return Change{Ref: it.ref, Action: Unchanged}, &prev, nil
	}
	reason := ""
	if known && exists && prev.Hash == it.hash {
		reason = "drift"
	}

	m, err := a.mapping(it.ref.gvk())
	if err != nil {
		return a.failed(it, err)
	}
	res, err := a.resource(m, it.ref.Namespace).Apply(ctx, it.ref.Name, it.obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if fields := immutableFields(err); len(fields) > 0 {
		if it.obj.GetAnnotations()[AnnotationForce] != "true" || noDeletes {
			return a.failed(it, fmt.Errorf("%s cannot be changed in place (immutable); to delete and recreate the object, annotate it %s: \"true\"", strings.Join(fields, ", "), AnnotationForce))
		}
		if res, err = a.recreate(ctx, m, it); err == nil {
			reason = "recreated: " + strings.Join(fields, ", ") + " is immutable"
		}
	}
	if err != nil {
		return a.failed(it, err)
	}

	action := Configured
	fields, others := ferryFields(res.GetManagedFields())
	if !exists {
		if fields != "" && !others && !strings.HasPrefix(reason, "recreated") {
			action = Created
		} else if reason == "" {
			reason = "adopted"
		}
	}
	return Change{Ref: it.ref, Action: action, Reason: reason}, &entry{Ref: it.ref, Hash: it.hash, Fields: fields}, nil
}

func (a *Applier) failed(it item, err error) (Change, *entry, error) {
	msg := scrub(err.Error(), it.obj)
	return Change{Ref: it.ref, Action: Failed, Reason: msg}, nil, &ObjectError{Ref: it.ref, Msg: msg, Transient: IsTransient(err)}
}
