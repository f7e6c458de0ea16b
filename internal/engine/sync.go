package engine

import (
	"context"
	"errors"
	"sort"
)

// SyncOnce fetches each repository and reconciles each environment (all, or
// only those named env) in the foreground, rendering, applying and running
// the steps after apply even when nothing changed; a transient failure is
// tried again until ctx ends. It returns the statuses and an error unless
// every environment is healthy: the mode for CI.
func (e *Engine) SyncOnce(ctx context.Context, env string) ([]Status, error) {
	var errs []error
	var out []Status
	names := make([]string, 0, len(e.repos))
	for n := range e.repos {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		rs := e.repos[name]
		if err := retried(ctx, func() error { _, err := e.fetch(ctx, name); return err }); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, spec := range rs.spec.Environments {
			if env != "" && spec.Name != env {
				continue
			}
			es := rs.envs[spec.Name]
			if err := retried(ctx, func() error { return e.reconcile(ctx, es, true) }); err != nil {
				errs = append(errs, err)
			}
			es.mu.Lock()
			out = append(out, es.status.clone())
			es.mu.Unlock()
		}
	}
	e.flushStatuses(ctx)
	return out, errors.Join(errs...)
}
