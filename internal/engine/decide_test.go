package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/promote"
	"github.com/ferry-gitops/ferry/render"
	"github.com/ferry-gitops/ferry/source"
)

func TestDecideWhatAReconcileDoes(t *testing.T) {
	cases := []struct {
		name string
		v    view
		want decision
	}{
		{"nothing is known of the repository yet", view{}, upToDate},
		{"the head is applied and nothing asks for a check", view{head: "b", applied: "b", knowInputs: true}, upToDate},
		{"a refused head waits for a new commit", view{head: "b", applied: "a", failedAt: "b", failed: true}, refused},
		{"a resync does not retry a refused head", view{head: "b", applied: "a", failedAt: "b", drift: true, failed: true}, refused},
		{"a new commit asks Git whether it touches an input", view{head: "b", applied: "a", knowInputs: true}, askGit},
		{"a new commit after a restart renders: the inputs are not known", view{head: "b", applied: "a"}, run},
		{"the first commit renders", view{head: "a"}, run},
		{"a drift check renders the applied head", view{head: "b", applied: "b", knowInputs: true, drift: true}, run},
		{"a failed environment renders again", view{head: "b", applied: "b", knowInputs: true, failed: true}, run},
		{"a failed environment renders a new commit without asking Git", view{head: "c", applied: "b", knowInputs: true, failed: true}, run},
		{"ferry sync renders even a refused head", view{head: "b", applied: "b", failedAt: "b", force: true}, run},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, decide(tc.v))
		})
	}
}

func TestEachFailureIsClassedByWhatRetriesIt(t *testing.T) {
	apiDown := fmt.Errorf("inventory r/e: read: %w", apierrors.NewServiceUnavailable("etcd is down"))
	invalid := &apply.ObjectError{Ref: apply.Ref{Kind: "ConfigMap", Name: "x"}, Msg: "spec.foo: Invalid value"}
	ghResponse := func(code int) error {
		return &github.ErrorResponse{Response: &http.Response{StatusCode: code, Header: http.Header{}}, Message: http.StatusText(code)}
	}
	cases := []struct {
		name string
		step Step
		err  error
		want class
	}{
		{"an unreachable Git server is transient", StepFetch, &net.OpError{Op: "dial", Err: errors.New("refused")}, transient},
		{"a broken kustomization is bad input", StepRender, &render.RefusedError{Kustomization: "k.yaml", Field: "resources[0]"}, badInput},
		{"a render past its deadline is transient", StepRender, fmt.Errorf("render env: %w", context.DeadlineExceeded), transient},
		{"an object the API server refuses is bad input", StepApply, invalid, badInput},
		{"an API server that does not answer is transient", StepApply, apiDown, transient},
		{"a mass delete waits for a person's confirmation", StepApply, &apply.MassDeleteError{Deleting: 3, Of: 4}, waiting},
		{"an unhealthy environment waits for the next resync", StepHealth, errors.New("not Current after 5m"), waiting},
		{"a failed test is bad input", StepTests, &testsFailed{failed: []apply.TestResult{{Model: "m", Test: "smoke"}}}, badInput},
		{"tests the API server could not start are transient", StepTests, apiDown, transient},
		{"a failed required check is bad input", StepChecks, &checksFailed{}, badInput},
		{"a check still pending after the wait waits for an event", StepChecks, &checksPending{after: time.Minute}, waiting},
		{"checks without GitHub configured are bad input", StepChecks, &noGitHub{checks: []string{"eval"}}, badInput},
		{"GitHub answering 502 to a check read is transient", StepChecks, ghResponse(http.StatusBadGateway), transient},
		{"a push that lost its lease is transient", StepPromote, fmt.Errorf("promote m: %w", source.ErrStale), transient},
		{"an unreachable remote on push is transient", StepPromote, &gitError{errors.New("dial tcp: refused")}, transient},
		{"GitHub answering 502 to a create is transient", StepPromote, ghResponse(http.StatusBadGateway), transient},
		{"a rate limit that outlasted the wait is transient", StepPromote, &github.RateLimitError{Message: "limit"}, transient},
		{"bad credentials are bad input", StepPromote, ghResponse(http.StatusUnauthorized), badInput},
		{"a pin file that cannot be edited is bad input", StepPromote, fmt.Errorf("models.yaml: %w", promote.ErrNotPinned), badInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, classify(tc.step, tc.err))
		})
	}
}

func TestAnErrorIsCutToItsBoundForStatusesAtACharacterBoundary(t *testing.T) {
	short := "render environments/dev: kustomization.yaml: unknown field"
	assert.Equal(t, short, capError(short))

	long := strings.Repeat("é", maxStatusError) // two bytes each
	got := capError(long)
	assert.LessOrEqual(t, len(got), maxStatusError+64)
	assert.True(t, utf8.ValidString(got), "never cut inside a character")
	assert.Contains(t, got, fmt.Sprintf("(%d more bytes in ferry's log)", maxStatusError))
}
