package preview

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/source"
)

// retryError marks a failure worth another try (errRetry).
type retryError struct{ err error }

func (e *retryError) Error() string        { return e.err.Error() }
func (e *retryError) Unwrap() error        { return e.err }
func (e *retryError) Is(target error) bool { return target == errRetry }

// preview builds pull request k's preview and posts it: the comment, then
// the ferry/preview status on the head it fetched. A preview cancelled (the
// pull request closed, a newer push, shutdown) posts nothing and is no
// error; one whose pull request ref is gone is dropped. A failure worth
// retrying (the fetch, GitHub's 5xx and rate limits) is returned matching
// errRetry; any other is posted as an error status on the event's head.
func (p *Pool) preview(run context.Context, k key, ev Event) error {
	ctx, cancel := context.WithTimeout(run, p.opts.Timeout)
	defer cancel()
	repo := p.repos[k.repo]
	start := time.Now()
	res, err := Build(ctx, p.opts.Renderer, *repo, Target{Number: k.number, Fork: ev.Fork})
	switch {
	case run.Err() != nil:
		p.metrics.outcome("cancelled")
		p.log.Debug("preview cancelled", "repo", k.repo, "pr", k.number, "reason", context.Cause(run))
		return nil
	case errors.Is(err, source.ErrRefNotFound):
		p.metrics.outcome("skipped")
		p.log.Info("preview skipped: the pull request has no head ref", "repo", k.repo, "pr", k.number, "error", err)
		return nil
	case isFetchError(err):
		return &retryError{err}
	case err != nil:
		p.fail(ctx, k, ev, err)
		return nil
	}

	body := promote.PreviewBody(*res, promote.MaxCommentBytes)
	comment, err := repo.GitHub.UpsertComment(ctx, k.number, promote.PreviewMarker, body)
	if err != nil {
		return p.postError(run, k, err)
	}
	if err := repo.GitHub.SetStatus(ctx, promote.PreviewStatus(*res)); err != nil {
		return p.postError(run, k, err)
	}
	p.metrics.outcome("posted")
	p.metrics.duration.Observe(time.Since(start).Seconds())
	var changed []string
	for _, e := range res.Environments {
		if e.Changed() || e.Failed() {
			changed = append(changed, e.Name)
		}
	}
	p.log.Info("preview posted", "repo", k.repo, "pr", k.number, "revision", res.Head, "comment", comment.Action, "changed", changed)
	return nil
}

// postError classifies a failure to post.
func (p *Pool) postError(run context.Context, k key, err error) error {
	switch {
	case run.Err() != nil:
		p.metrics.outcome("cancelled")
		return nil
	case promote.IsTransient(err):
		return &retryError{err}
	}
	p.metrics.outcome("failed")
	p.log.Warn("preview not posted", "repo", k.repo, "pr", k.number, "error", err)
	return nil
}

// fail posts an error status saying why pull request k has no preview, on
// the head its event named: ferry has nothing better to go by.
func (p *Pool) fail(ctx context.Context, k key, ev Event, cause error) {
	p.metrics.outcome("failed")
	p.log.Warn("preview failed", "repo", k.repo, "pr", k.number, "revision", ev.HeadSHA, "error", cause)
	if ev.HeadSHA == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := p.repos[k.repo].GitHub.SetStatus(ctx, promote.CommitStatus{
		SHA: ev.HeadSHA, Context: promote.PreviewContext, State: promote.StateError,
		Description: fmt.Sprintf("no preview: %v", cause),
	})
	if err != nil {
		p.log.Warn("preview status not posted", "repo", k.repo, "pr", k.number, "error", err)
	}
}
