package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/ferry-gitops/ferry/apply"
	"github.com/ferry-gitops/ferry/internal/engine"
)

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

// page GETs / and parses it.
func page(t *testing.T, h http.Handler) (*html.Node, string) {
	t.Helper()
	rec := get(t, h, "/")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	doc, err := html.Parse(strings.NewReader(rec.Body.String()))
	require.NoError(t, err)
	return doc, rec.Body.String()
}

func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func byID(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	found := find(doc, func(n *html.Node) bool { return attr(n, "id") == id })
	require.Len(t, found, 1, "one element with id %q", id)
	return found[0]
}

// text is the text a reader sees in n (entities decoded, tags dropped,
// whitespace collapsed, text nodes apart).
func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data + " ")
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// cellTexts is the text of each cell of a table row.
func cellTexts(tr *html.Node) []string {
	var out []string
	for c := tr.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
			out = append(out, text(c))
		}
	}
	return out
}

func TestColumnsFollowPromotionOrderWithEnvironmentsOutsideAChainAfter(t *testing.T) {
	f := newFake(
		healthy("ml", "prod", "", "fraud=1.0.0"),
		healthy("ml", "qa", "", "fraud=0.9.0"),
		healthy("ml", "staging", "prod", "fraud=1.1.0"),
		healthy("ml", "dev", "staging", "fraud=1.2.0"),
	)
	doc, _ := page(t, newDashboard(t, f, Options{}))

	matrix := find(byID(t, doc, "repo/ml"), func(n *html.Node) bool { return attr(n, "class") == "matrix" })
	require.Len(t, matrix, 1)
	var cols []string
	for _, th := range find(matrix[0], func(n *html.Node) bool { return attr(n, "scope") == "col" }) {
		cols = append(cols, strings.Fields(text(th))[0])
	}
	assert.Equal(t, []string{"Model", "dev", "staging", "prod", "qa"}, cols)

	row := find(byID(t, doc, "repo/ml"), func(n *html.Node) bool { return n.Data == "tr" })[1]
	var versions []string
	for _, td := range find(row, func(n *html.Node) bool { return n.Data == "td" }) {
		versions = append(versions, text(find(td, func(n *html.Node) bool { return attr(n, "class") == "ver" })[0]))
	}
	assert.Equal(t, []string{"1.2.0", "1.1.0", "1.0.0", "0.9.0"}, versions, "each cell sits under its environment")
}

func TestPromotionOrder(t *testing.T) {
	cases := []struct {
		name string
		envs [][2]string // name, promoteTo, in configuration order
		want []string
	}{
		{"a chain listed backwards is walked from its start", [][2]string{{"prod", ""}, {"staging", "prod"}, {"dev", "staging"}}, []string{"dev", "staging", "prod"}},
		{"environments without promotion keep configuration order", [][2]string{{"b", ""}, {"a", ""}}, []string{"b", "a"}},
		{"two chains into one target list the target once", [][2]string{{"prod", ""}, {"dev", "prod"}, {"perf", "prod"}}, []string{"dev", "prod", "perf"}},
		{"an environment outside the chain comes after it", [][2]string{{"sandbox", ""}, {"dev", "prod"}, {"prod", ""}}, []string{"dev", "prod", "sandbox"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in []engine.Status
			for _, e := range c.envs {
				in = append(in, engine.Status{Repository: "r", Environment: e[0], PromoteTo: e[1]})
			}
			var got []string
			for _, s := range promotionOrder(in) {
				got = append(got, s.Environment)
			}
			assert.Equal(t, c.want, got)
		})
	}
}

func TestNamesAndErrorsShowAsText(t *testing.T) {
	evil := "<script>alert(1)</script>"
	s := healthy("ml<b>", "dev", "", evil+"=1.0.0\"><img src=x onerror=alert(2)>")
	s.Phase, s.FailedStep = engine.Failed, engine.StepApply
	s.LastError = `apply Deployment/ml/x: <img src=x onerror=alert(3)> & "quoted"`
	s.Promotions = []engine.Promotion{{Model: evil, Version: "1.0.0", To: "prod", PR: 7, URL: "javascript:alert(4)", Action: "opened"}}
	s.History[0].Error = "</pre><script>alert(5)</script>"
	f := newFake(s)
	d := newDashboard(t, f, Options{})
	doc, body := page(t, d)

	scripts := find(doc, func(n *html.Node) bool { return n.Data == "script" })
	require.Len(t, scripts, 1, "the only script is the page's own")
	assert.Equal(t, "assets/dashboard.js", attr(scripts[0], "src"))
	assert.Empty(t, find(doc, func(n *html.Node) bool { return n.Data == "img" || n.Data == "b" }), "no element comes from a status")

	cell := byID(t, doc, "cell/ml%3Cb%3E/dev/%3Cscript%3Ealert%281%29%3C%2Fscript%3E")
	assert.Contains(t, text(cell), `1.0.0"><img src=x onerror=alert(2)>`, "the version shows as written")
	assert.Contains(t, text(cell), `<img src=x onerror=alert(3)> & "quoted"`, "the error shows as written")
	assert.Contains(t, text(doc), evil, "the model's name shows as written")
	assert.Contains(t, text(doc), "</pre><script>alert(5)</script>")
	for _, a := range find(doc, func(n *html.Node) bool { return n.Data == "a" }) {
		assert.NotContains(t, attr(a, "href"), "javascript:", "a link from a status cannot run script")
	}
	assert.NotContains(t, body, "<script>alert")

	// The same holds for a fragment sent over /events.
	frag := envFragment(t, d, f, "ml<b>", "dev")
	assert.NotContains(t, frag, "<script>alert")
	assert.NotContains(t, frag, "<img")
	assert.Contains(t, frag, "&lt;img src=x onerror=alert(3)&gt;")
}

// envFragment renders one environment's fragment as a stream would.
func envFragment(t *testing.T, d *Dashboard, f *fakeStatuses, repo, env string) string {
	t.Helper()
	var statuses []engine.Status
	for _, s := range f.Status() {
		if s.Repository == repo {
			statuses = append(statuses, s)
		}
	}
	v := buildRepo(repo, statuses, epoch, panels{tables: true})
	var b strings.Builder
	require.NoError(t, d.views.env(&b, &v, env))
	return b.String()
}

func TestAFailedCellHoldsTheWholeErrorBehindAButton(t *testing.T) {
	long := "tests: fraud-detector/smoke failed: Job ml-dev/fraud-detector-smoke-0123456789ab: BackoffLimitExceeded\n" +
		strings.Repeat("log line with password=*** scrubbed\n", 60) + "last line"
	s := healthy("ml", "dev", "staging", "fraud-detector=1.4.0")
	s.Phase, s.FailedStep, s.LastError = engine.Failed, engine.StepTests, long
	s.Tests = []apply.TestResult{{Model: "fraud-detector", Test: "smoke", Passed: false, Reason: "BackoffLimitExceeded"}}
	ok := healthy("ml", "staging", "", "fraud-detector=1.3.0")
	doc, _ := page(t, newDashboard(t, newFake(s, ok), Options{}))

	cell := byID(t, doc, "cell/ml/dev/fraud-detector")
	assert.Contains(t, attr(cell, "class"), "st-fail")
	assert.Contains(t, text(cell), "✗ failed at tests", "a word and a symbol say it failed, not the colour alone")
	assert.Contains(t, text(cell), "tests: ✗ smoke failed")

	details := byID(t, doc, "err/ml/dev/fraud-detector")
	assert.Equal(t, "details", details.Data, "the error opens on click, as a native disclosure")
	summary := find(details, func(n *html.Node) bool { return n.Data == "summary" })
	require.Len(t, summary, 1)
	assert.Less(t, len([]rune(text(summary[0]))), 100, "the summary is one short line")
	pre := find(details, func(n *html.Node) bool { return n.Data == "pre" })
	require.Len(t, pre, 1)
	assert.Equal(t, long, pre[0].FirstChild.Data, "the whole error, as the status API serves it")

	assert.NotContains(t, text(byID(t, doc, "cell/ml/staging/fraud-detector")), "failed")
	assert.Empty(t, find(byID(t, doc, "cell/ml/staging/fraud-detector"), func(n *html.Node) bool { return n.Data == "details" }))
}

func TestEachStepHasAWordAndASymbol(t *testing.T) {
	cases := []struct {
		phase    engine.Phase
		revision string
		health   string
		want     string
	}{
		{engine.Idle, "abc", engine.HealthHealthy, "✓ healthy"},
		{engine.Idle, "", engine.HealthUnknown, "○ pending"},
		{engine.Idle, "abc", engine.HealthUnhealthy, "! unhealthy"},
		{engine.Rendering, "abc", "", "↻ rendering"},
		{engine.Applying, "abc", "", "↻ applying"},
		{engine.Waiting, "abc", "", "↻ waiting"},
		{engine.Testing, "abc", "", "↻ testing"},
		{engine.Checking, "abc", "", "↻ checks"},
		{engine.Promoting, "abc", "", "↻ promoting"},
		{engine.Failed, "abc", "", "✗ failed at render"},
	}
	for _, c := range cases {
		st := stepOf(engine.Status{Phase: c.phase, Revision: c.revision, Health: c.health, FailedStep: engine.StepRender})
		assert.Equal(t, c.want, st.Symbol+" "+st.Word, "%s/%s", c.phase, c.health)
		assert.NotEmpty(t, st.Class)
	}
}

func TestTheCellShowsThePromotionAndHowLongAgo(t *testing.T) {
	dev := healthy("ml", "dev", "staging", "fraud-detector=1.4.0", "ranker=2.0.0")
	dev.Promotions = []engine.Promotion{
		{Model: "fraud-detector", Version: "1.4.0", To: "staging", Branch: "ferry/promote/fraud-detector/staging", PR: 42, URL: "https://github.com/acme/ml/pull/42", Action: "opened"},
		{Model: "ranker", Version: "2.0.0", To: "staging", Branch: "ferry/promote/ranker/staging", Action: "pushed"},
	}
	staging := healthy("ml", "staging", "", "fraud-detector=1.3.0")
	doc, _ := page(t, newDashboard(t, newFake(dev, staging), Options{}))

	cell := byID(t, doc, "cell/ml/dev/fraud-detector")
	links := find(cell, func(n *html.Node) bool { return n.Data == "a" })
	require.Len(t, links, 1)
	assert.Equal(t, "https://github.com/acme/ml/pull/42", attr(links[0], "href"))
	assert.Equal(t, "PR #42 → staging", text(links[0]))
	assert.Contains(t, text(cell), "changed 3m ago")
	assert.Contains(t, text(cell), "health: Healthy")
	assert.Contains(t, text(byID(t, doc, "cell/ml/dev/ranker")), "branch ferry/promote/ranker/staging → staging (pushed)")
	assert.Contains(t, text(byID(t, doc, "cell/ml/staging/ranker")), "— not in staging", "a model an environment lacks is said so")
}

func TestTheHistoryPanelListsReconcilesNewestFirst(t *testing.T) {
	s := healthy("ml", "dev", "", "m=1")
	s.History = append(s.History, engine.Record{
		Revision: "fedcba9876543210fedc", Result: "failure", Step: engine.StepHealth, Error: "Deployment/ml/m: timed out",
		Summary: "2 created, 1 configured, 1 deleted, 17 unchanged", Started: epoch.Add(-30 * time.Second), Duration: 2500 * time.Millisecond,
	})
	doc, _ := page(t, newDashboard(t, newFake(s), Options{}))

	hist := byID(t, doc, "hist/ml/dev")
	rows := find(hist, func(n *html.Node) bool { return n.Data == "tr" })
	require.Len(t, rows, 5, "a header and four reconciles")
	assert.Equal(t, []string{"fedcba987654", "✗ failure at health error Deployment/ml/m: timed out", "2.5 s", "+2 ~1 −1", "30s ago"}, cellTexts(rows[1]))
	assert.Equal(t, []string{"000000000000", "✓ success", "420 ms", "+1 ~0 −0", "8m ago"}, cellTexts(rows[2]))
	assert.Equal(t, "2 created, 1 configured, 1 deleted, 17 unchanged", attr(find(rows[1], func(n *html.Node) bool { return n.Data == "td" })[3], "title"))
	assert.NotEmpty(t, find(hist, func(n *html.Node) bool { return n.Data == "th" && attr(n, "scope") == "col" }))
}

func TestDelta(t *testing.T) {
	assert.Equal(t, "+2 ~0 −1", delta("2 created, 1 deleted, 5 unchanged"))
	assert.Equal(t, "+0 ~0 −0", delta("20 unchanged"))
	assert.Equal(t, "nothing to apply", delta("nothing to apply"))
	assert.Equal(t, "", delta(""))
}

func TestThePageLoadsNothingFromElsewhere(t *testing.T) {
	d := newDashboard(t, newFake(fleet(2)...), Options{})
	rec := get(t, d, "/")
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'")
	doc, err := html.Parse(rec.Body)
	require.NoError(t, err)
	for _, n := range find(doc, func(n *html.Node) bool { return attr(n, "src") != "" || n.Data == "link" }) {
		ref := attr(n, "src") + attr(n, "href")
		assert.NotContains(t, ref, "//", "%s loads only from the page's own origin", ref)
		code := get(t, d, "/"+ref)
		assert.Equal(t, http.StatusOK, code.Code, ref)
		assert.NotEmpty(t, code.Body.String())
	}
	assert.Equal(t, "text/css; charset=utf-8", get(t, d, "/assets/dashboard.css").Header().Get("Content-Type"))
	assert.Equal(t, "text/javascript; charset=utf-8", get(t, d, "/assets/dashboard.js").Header().Get("Content-Type"))
	assert.Equal(t, http.StatusNotFound, get(t, d, "/assets/nope.js").Code)
	assert.Equal(t, http.StatusNotFound, get(t, d, "/nope").Code)
	assert.Len(t, find(doc, func(n *html.Node) bool { return n.Data == "table" && attr(n, "class") == "matrix" }), 2)
}

func TestNewRefusesNoStatuses(t *testing.T) {
	_, err := New(Options{})
	require.Error(t, err)
}

func TestALargePageLinksEachHistoryTableInsteadOfRenderingIt(t *testing.T) {
	d := newDashboard(t, newFake(fleet(4)...), Options{}) // 12 environments
	doc, _ := page(t, d)
	hist := byID(t, doc, "hist/models-002/staging")
	assert.Empty(t, find(hist, func(n *html.Node) bool { return n.Data == "table" }))
	assert.False(t, hasAttr(byID(t, doc, "histd/models-002/staging"), "open"), "closed")
	assert.Contains(t, text(hist), "last reconcile: ✓ success , 420 ms, +1 ~0 −0 · 8m ago", "the newest reconcile is in the summary")
	links := find(hist, func(n *html.Node) bool { return attr(n, "data-load") != "" || n.Data == "a" })
	require.Len(t, links, 1)
	href := attr(links[0], "href")
	// A browser percent-decodes the fragment to find the id.
	assert.Equal(t, "?repo=models-002&env=staging#hist%2fmodels-002%2fstaging", href)

	// Without the script, the link reloads the page with that panel open and filled.
	expanded := get(t, d, "/"+strings.Split(href, "#")[0])
	doc, err := html.Parse(expanded.Body)
	require.NoError(t, err)
	assert.Len(t, find(byID(t, doc, "hist/models-002/staging"), func(n *html.Node) bool { return n.Data == "table" }), 1)
	assert.True(t, hasAttr(byID(t, doc, "histd/models-002/staging"), "open"), "the requested panel is open")
	assert.Empty(t, find(byID(t, doc, "hist/models-002/dev"), func(n *html.Node) bool { return n.Data == "table" }), "only that one")

	// With it, /fragment gives the environment's fragment to swap in.
	frag := get(t, d, "/fragment?repo=models-002&env=staging")
	require.Equal(t, http.StatusOK, frag.Code)
	assert.Equal(t, []string{"cell/models-002/staging/fraud-detector", "hist/models-002/staging"}, topIDs(frag.Body.String()))
	assert.Contains(t, frag.Body.String(), `<table class="history">`)
	assert.Equal(t, http.StatusNotFound, get(t, d, "/fragment?repo=models-002&env=nowhere").Code)
}
