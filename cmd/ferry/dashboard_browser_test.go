package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/testenv"
	"github.com/ferry-gitops/ferry/webhooks"
)

// TestDashboardFollowsAPushInABrowser opens the dashboard of a `ferry serve`
// (a real cluster and Git server) in Debian's chromium, pushes a new version
// to dev, and watches the dev cell turn to it, healthy, without a reload.
// Its screenshot is dashboard.png in the test's artifact directory (kept
// with `go test -artifacts -outputdir DIR`).
func TestDashboardFollowsAPushInABrowser(t *testing.T) {
	browser := testenv.Chromium(t, 1280, 800)
	x := newE2E(t, "dev", "staging", "prod")
	writeDashboardConfig(t, x)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", x.config, "--log-format", "json"}, io.Discard, &logs)
	}()
	public, admin := logs.addresses(t)
	waitBrowserStatus(t, admin, "every environment healthy at 1.0.0", func(envs []browserEnvStatus) bool {
		for _, e := range envs {
			if e.Phase != "Idle" || e.Health != "Healthy" {
				return false
			}
		}
		return len(envs) == 3
	})

	cell := fmt.Sprintf("cell/%s/dev/fraud-detector", x.repo)
	inBrowser(t, browser, time.Minute, "open the dashboard", chromedp.Navigate(admin+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-live="on"]`)))
	columns := browserEval[[]string](t, browser, fmt.Sprintf(
		`[...document.getElementById(%q).querySelectorAll("table.matrix thead th")].map(th => th.firstChild.textContent.trim())`, "repo/"+x.repo))
	assert.Equal(t, []string{"Model", "dev", "staging", "prod"}, columns, "promotion order, not configuration order")
	assert.Contains(t, browserCellText(t, browser, cell), "1.0.0")
	// A reload or a navigation would clear these; a refresh event would
	// replace the repository's section: the page must keep all three.
	browserEval[bool](t, browser, fmt.Sprintf(`window.ferryMarker = performance.timeOrigin;
		window.ferrySection = document.getElementById(%q);
		new MutationObserver(() => {
			const c = document.getElementById(%q);
			if (!window.ferrySeen && c && c.querySelector(".ver").textContent.includes("1.1.0") && c.querySelector(".step").textContent.includes("healthy")) window.ferrySeen = Date.now();
		}).observe(document.getElementById("main"), {childList: true, subtree: true});
		true`, "repo/"+x.repo, cell))

	x.wt.Write(t, "environments/dev/models.yaml", testenv.ModelPin("1.1.0"))
	head := x.wt.Commit(t, "bump fraud-detector to 1.1.0 in dev")
	x.wt.Push(t)
	signalDashboardPush(t, public, head)

	inBrowser(t, browser, 2*time.Minute, "the dev cell shows 1.1.0, healthy",
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => {
			const c = document.getElementById(%q);
			return c && c.querySelector(".ver").textContent.includes("1.1.0") && c.querySelector(".step").textContent.includes("healthy");
		})()`, cell), chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(2*time.Minute)))
	text := browserCellText(t, browser, cell)
	assert.Contains(t, text, "✓ healthy", "a word and a symbol, not only a colour")
	assert.Contains(t, text, "health: Healthy")
	assert.Contains(t, text, "branch ferry/promote/fraud-detector/staging → staging", "the promotion it opened")
	assert.Equal(t, browserEval[float64](t, browser, `performance.timeOrigin`), browserEval[float64](t, browser, `window.ferryMarker`),
		"the page was updated in place: no reload, no navigation")
	assert.True(t, browserEval[bool](t, browser, fmt.Sprintf(`document.getElementById(%q) === window.ferrySection`, "repo/"+x.repo)),
		"the changed cells were swapped in, the page body was not refreshed")
	assert.Contains(t, browserCellText(t, browser, "cell/"+x.repo+"/staging/fraud-detector"), "1.0.0", "staging is not touched")

	// Informational: from the engine recording the change to the browser showing it.
	envs := browserStatus(t, admin)
	if seen := browserEval[float64](t, browser, `window.ferrySeen || 0`); seen > 0 {
		for _, e := range envs {
			if e.Environment == "dev" {
				t.Logf("the dev cell changed %.0f ms after the engine recorded it", seen-float64(e.LastChange.UnixMicro())/1000)
			}
		}
	}

	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	shot := filepath.Join(t.ArtifactDir(), "dashboard.png")
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	t.Logf("screenshot: %s", shot)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("serve did not stop with the dashboard open: its event stream must end on shutdown")
	}
}

// inBrowser runs actions in the browser, failing t if they take longer than d.
func inBrowser(t *testing.T, browser context.Context, d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, d)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...), "%s (within %s)", what, d)
}

// browserEval runs a JavaScript expression in the page, within 10 s.
func browserEval[T any](t *testing.T, browser context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, js)
	return v
}

func browserCellText(t *testing.T, browser context.Context, id string) string {
	t.Helper()
	return browserEval[string](t, browser, fmt.Sprintf(`document.getElementById(%q).innerText`, id))
}

// writeDashboardConfig rewrites x's ferry.yaml so that dev promotes to staging
// and staging to prod, by branch (no GitHub API), listing prod first: the
// page must order columns by promotion, not by configuration.
func writeDashboardConfig(t *testing.T, x *e2e) {
	t.Helper()
	kc := x.cluster.Kubeconfig
	x.writeConfig(t, fmt.Sprintf(`      - {name: prod, path: environments/prod, cluster: {kubeconfig: %q}}
      - {name: staging, path: environments/staging, cluster: {kubeconfig: %q}, promoteTo: prod, promotion: branch}
      - {name: dev, path: environments/dev, cluster: {kubeconfig: %q}, promoteTo: staging, promotion: branch}
`, kc, kc, kc))
}

// signalDashboardPush sends GitHub's push webhook for head, signed.
func signalDashboardPush(t *testing.T, public, head string) {
	t.Helper()
	body := pushPayload(head)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, public+"/webhooks/github", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "dashboard-"+head)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", webhooks.Sign([]byte(hookSecret), body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

type browserEnvStatus struct {
	Environment, Phase, Health string
	LastChange                 time.Time
}

func browserStatus(t *testing.T, admin string) []browserEnvStatus {
	t.Helper()
	_, body := get(t, admin+"/api/v1/status")
	var s struct{ Environments []browserEnvStatus }
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return nil
	}
	return s.Environments
}

// waitBrowserStatus polls /api/v1/status until ok says so, at most two minutes.
func waitBrowserStatus(t *testing.T, admin, what string, ok func([]browserEnvStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ok(browserStatus(t, admin)) {
		if time.Now().After(deadline) {
			_, body := get(t, admin+"/api/v1/status")
			t.Fatalf("%s: not within 2 minutes: %s", what, strings.TrimSpace(body))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
