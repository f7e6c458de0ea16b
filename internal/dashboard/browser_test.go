package dashboard

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/testenv"
)

// TestTheScriptKeepsThePageCurrentInABrowser drives the page's script in
// Debian's chromium with statuses fed directly: an event swaps a cell in
// place and keeps open the error its reader opened, a closed history panel
// loads its table, a refresh replaces the page body, all without a
// navigation; and the page fits 1280 and 390 pixels without sideways
// scrolling. Screenshots go to the test's artifact directory.
// (cmd/ferry's TestDashboardFollowsAPushInABrowser does it against ferry serve.)
func TestTheScriptKeepsThePageCurrentInABrowser(t *testing.T) {
	browser := testenv.Chromium(t, 1280, 800)
	statuses := fleet(4) // 12 environments: panels closed, tables on request
	statuses[4].Phase, statuses[4].FailedStep, statuses[4].LastError = engine.Failed, engine.StepTests, "first error\nits second line"
	f := newFake(statuses...)
	stop := make(chan struct{})
	d := newDashboard(t, f, Options{Done: stop, MaxFragments: 3, Now: time.Now})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })

	do(t, browser, "open the page", chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.CSS(`#live[data-live="on"]`)))
	origin := js[float64](t, browser, `performance.timeOrigin`)

	// The reader opens a failed cell's error; an event for its environment
	// swaps the cell, and the error stays open, with the new text.
	errSel := `[id="err/models-001/staging/fraud-detector"]`
	do(t, browser, "open the error", chromedp.Click(chromedp.CSS(errSel+" > summary")))
	require.True(t, js[bool](t, browser, fmt.Sprintf(`document.querySelector(%q).open`, errSel)))
	f.update("models-001", "staging", func(s *engine.Status) { s.LastError = "second error\n<b>not bold</b>" })
	waitFor(t, browser, "the new error", fmt.Sprintf(`document.querySelector(%q + " pre").textContent.startsWith("second error")`, errSel))
	assert.True(t, js[bool](t, browser, fmt.Sprintf(`document.querySelector(%q).open`, errSel)), "what the reader opened stays open")
	assert.Equal(t, "second error\n<b>not bold</b>", js[string](t, browser, fmt.Sprintf(`document.querySelector(%q + " pre").textContent`, errSel)))
	assert.Zero(t, js[int](t, browser, `document.querySelectorAll("main b").length`), "an error's HTML is text")

	// A closed panel loads its table in place.
	do(t, browser, "open a panel", chromedp.Click(chromedp.CSS(`[id="histd/models-002/prod"] > summary`)),
		chromedp.Click(chromedp.CSS(`[id="hist/models-002/prod"] a[data-load]`)))
	tableIn := `document.querySelector('[id="hist/models-002/prod"] table.history') !== null`
	waitFor(t, browser, "the panel's table", tableIn)

	// More changes at once than MaxFragments: one refresh replaces <main>;
	// the open panel stays open and reloads its table.
	js[bool](t, browser, `window.untouched = document.getElementById("repo/models-002"); true`)
	var keys []engine.EnvironmentKey
	for _, k := range [][2]string{{"models-000", "dev"}, {"models-000", "staging"}, {"models-001", "dev"}, {"models-003", "prod"}} {
		keys = append(keys, engine.EnvironmentKey{Repository: k[0], Environment: k[1]})
	}
	f.updateAll(func(s *engine.Status) { s.Models[0].Version = "9.9.9" }, keys...)
	for _, k := range keys {
		waitFor(t, browser, "9.9.9 in "+k.Repository+"/"+k.Environment, fmt.Sprintf(
			`document.getElementById(%q).querySelector(".ver").textContent === "9.9.9"`, "cell/"+k.Repository+"/"+k.Environment+"/fraud-detector"))
	}
	assert.False(t, js[bool](t, browser, `document.getElementById("repo/models-002") === window.untouched`), "a refresh, not fragments")
	assert.True(t, js[bool](t, browser, `document.getElementById("histd/models-002/prod").open`))
	waitFor(t, browser, "the panel's table again", tableIn)
	assert.Equal(t, origin, js[float64](t, browser, `performance.timeOrigin`), "no reload, no navigation")
	assert.Empty(t, js[string](t, browser, `location.search`))

	// Readable at 1280 × 800 and at a phone's 390 px: nothing wider than the window.
	shoot(t, browser, "desktop.png")
	assert.LessOrEqual(t, js[int](t, browser, `document.documentElement.scrollWidth`), 1280)
	do(t, browser, "narrow the window", chromedp.EmulateViewport(390, 844))
	assert.LessOrEqual(t, js[int](t, browser, `document.documentElement.scrollWidth`), 390, "no sideways scrolling on a phone")
	assert.Equal(t, "block", js[string](t, browser, `getComputedStyle(document.querySelector(".cell .env")).display`),
		"each cell names its environment when the header row is hidden")
	shoot(t, browser, "phone.png")
}

// do runs actions in the browser within 30 s.
func do(t *testing.T, browser context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...), what)
}

// js evaluates an expression in the page within 10 s.
func js[T any](t *testing.T, browser context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// waitFor polls a predicate in the page, at most 10 s.
func waitFor(t *testing.T, browser context.Context, what, predicate string) {
	t.Helper()
	do(t, browser, what, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
}

func shoot(t *testing.T, browser context.Context, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(t.ArtifactDir(), name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}
