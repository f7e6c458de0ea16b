package dashboard

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-gitops/ferry/internal/engine"
	"github.com/ferry-gitops/ferry/internal/object"
)

// pageView is what the page template shows: every repository, in
// configuration order.
type pageView struct {
	// State identifies the statuses shown (combine of hashes); the script hands it to
	// /events, which sends a refresh if they changed before it connected.
	State     string
	Generated time.Time
	Repos     []repoView
	// hashes are envHash of each status, in configuration order.
	hashes []uint64
}

// smallPage is the most environments a page shows with every history panel
// open and filled. A bigger page shows each panel closed, with the last
// reconcile in its summary and a link that loads its table: rendering every
// table of 300 environments (3,000 rows) would take most of the page's
// budget for panels nobody opened.
const smallPage = 9

// panels says how a view renders history panels.
type panels struct {
	// open opens every panel.
	open bool
	// tables fills every panel with its table.
	tables bool
	// expand opens and fills one panel (the page's ?repo=&env=).
	expand engine.EnvironmentKey
}

// pagePanels is how a page of n environments renders its panels.
func pagePanels(n int) panels {
	small := n <= smallPage
	return panels{open: small, tables: small}
}

// repoView is one repository's table: a column per environment in
// promotion order, a row per model any of them serves.
type repoView struct {
	Name string
	ID   string
	Envs []envView
	Rows []rowView
}

// models are the names of the repository's rows.
func (r *repoView) models() []string {
	out := make([]string, len(r.Rows))
	for i, row := range r.Rows {
		out[i] = row.Model
	}
	return out
}

// envView is an environment's column header and history panel.
type envView struct {
	Repository, Name, PromoteTo string
	HistoryID, DetailID         string
	// Open shows the history panel open when the page loads; Table fills
	// it (else it links to its table).
	Open, Table bool
	// Last is the newest reconcile, for the panel's summary; History
	// holds every one only with Table. Reconciles counts them.
	Last           *recordView
	Reconciles     int
	Step           stepView
	Revision, Head string
	Health         string
	LastReconcile  agoView
	History        []recordView
}

// rowView is a model and its cell in each environment, in the order of
// repoView.Envs. Model is "" in the one row of a repository none of whose
// environments reports a model yet.
type rowView struct {
	Model string
	Cells []cellView
}

// cellView is one model in one environment.
type cellView struct {
	ID, Env, Model string
	// Version is "" when the environment does not serve the model.
	Version   string
	Step      stepView
	Health    string
	Changed   agoView
	Tests     []testView
	Promotion *promotionView
	// Error is the environment's last error, in full, when it failed.
	Error, ErrorID, Brief string
}

// stepView is a pipeline step as words, a symbol and a class for colour:
// the colour is never the only signal.
type stepView struct{ Word, Symbol, Class string }

type agoView struct {
	ISO, Text string
}

type testView struct {
	Name, Symbol, Reason string
}

type promotionView struct {
	PR                   int
	URL, Branch, To      string
	Action, Skipped, Ver string
}

// recordView is one reconcile; its fields are formatted here so that the
// template, run for every row of every history, does little.
type recordView struct {
	Class, Symbol, Outcome                    string
	Revision, Duration, Delta, Summary, Error string
	Started                                   agoView
}

// buildPage groups statuses by repository, keeping the first-seen order.
func buildPage(statuses []engine.Status, now time.Time, mode panels) *pageView {
	p := &pageView{Generated: now, hashes: make([]uint64, len(statuses))}
	for i, s := range statuses {
		p.hashes[i] = envHash(s)
	}
	p.State = combine(p.hashes)
	for i := 0; i < len(statuses); {
		j := i + 1
		for j < len(statuses) && statuses[j].Repository == statuses[i].Repository {
			j++
		}
		p.Repos = append(p.Repos, buildRepo(statuses[i].Repository, statuses[i:j], now, mode))
		i = j
	}
	return p
}

// buildRepo is one repository's view from the statuses of its environments.
func buildRepo(name string, statuses []engine.Status, now time.Time, mode panels) repoView {
	r := repoView{Name: name, ID: "repo/" + url.PathEscape(name)}
	ordered := promotionOrder(statuses)
	names := map[string]bool{}
	for _, s := range ordered {
		expand := mode.expand == engine.EnvironmentKey{Repository: s.Repository, Environment: s.Environment}
		e := buildEnv(s, now, mode.tables || expand)
		e.Open = mode.open || expand
		r.Envs = append(r.Envs, e)
		for _, m := range s.Models {
			names[m.Name] = true
		}
	}
	models := make([]string, 0, len(names))
	for m := range names {
		models = append(models, m)
	}
	slices.Sort(models)
	if len(models) == 0 {
		models = []string{""}
	}
	for _, m := range models {
		row := rowView{Model: m}
		for _, s := range ordered {
			row.Cells = append(row.Cells, buildCell(s, m, now))
		}
		r.Rows = append(r.Rows, row)
	}
	return r
}

// promotionOrder orders one repository's environments as models travel:
// from each environment nothing promotes into, along promoteTo (dev →
// staging → prod); environments in no chain follow in configuration order.
func promotionOrder(statuses []engine.Status) []engine.Status {
	byName := map[string]int{}
	target := map[string]bool{}
	for i, s := range statuses {
		byName[s.Environment] = i
		if s.PromoteTo != "" {
			target[s.PromoteTo] = true
		}
	}
	out := make([]engine.Status, 0, len(statuses))
	seen := make([]bool, len(statuses))
	for i, s := range statuses {
		if target[s.Environment] || s.PromoteTo == "" {
			continue
		}
		for j, ok := i, true; ok && !seen[j]; j, ok = byName[statuses[j].PromoteTo] {
			seen[j] = true
			out = append(out, statuses[j])
		}
	}
	for i, s := range statuses {
		if !seen[i] {
			out = append(out, s)
		}
	}
	return out
}

// buildEnv is an environment's header and history panel; without table,
// only the newest reconcile is formatted, for the panel's summary.
func buildEnv(s engine.Status, now time.Time, table bool) envView {
	suffix := url.PathEscape(s.Repository) + "/" + url.PathEscape(s.Environment)
	e := envView{
		Repository: s.Repository, Name: s.Environment, PromoteTo: s.PromoteTo,
		HistoryID: "hist/" + suffix, DetailID: "histd/" + suffix,
		Step: stepOf(s), Revision: object.ShortSHA(s.Revision), Head: object.ShortSHA(s.Head),
		Health: s.Health, LastReconcile: ago(s.LastReconcile, now),
		Table: table, Reconciles: len(s.History),
	}
	for i := len(s.History) - 1; i >= 0 && (table || len(e.History) == 0); i-- {
		e.History = append(e.History, buildRecord(s.History[i], now))
	}
	if len(e.History) > 0 {
		e.Last = &e.History[0]
	}
	return e
}

func buildRecord(h engine.Record, now time.Time) recordView {
	rv := recordView{
		Class: "st-ok", Symbol: "✓", Outcome: h.Result,
		Revision: object.ShortSHA(h.Revision), Summary: h.Summary,
		Delta: delta(h.Summary), Duration: duration(h.Duration), Error: h.Error, Started: ago(h.Started, now),
	}
	if h.Result != "success" {
		rv.Class, rv.Symbol = "st-fail", "✗"
		if h.Step != "" {
			rv.Outcome += " at " + string(h.Step)
		}
	}
	return rv
}

func buildCell(s engine.Status, model string, now time.Time) cellView {
	id := url.PathEscape(s.Repository) + "/" + url.PathEscape(s.Environment) + "/" + url.PathEscape(model)
	c := cellView{
		ID: "cell/" + id, Env: s.Environment, Model: model,
		Step: stepOf(s), Health: s.Health, Changed: ago(s.LastChange, now),
	}
	for _, m := range s.Models {
		if m.Name == model {
			c.Version = m.Version
		}
	}
	for _, t := range s.Tests {
		if t.Model == model {
			tv := testView{Name: t.Test, Symbol: "✓"}
			if !t.Passed {
				tv.Symbol, tv.Reason = "✗", t.Reason
			}
			c.Tests = append(c.Tests, tv)
		}
	}
	for _, p := range s.Promotions {
		if p.Model == model {
			c.Promotion = &promotionView{PR: p.PR, URL: p.URL, Branch: p.Branch, To: p.To, Action: p.Action, Skipped: p.Skipped, Ver: p.Version}
		}
	}
	if s.Phase == engine.Failed && s.LastError != "" {
		c.Error, c.ErrorID, c.Brief = s.LastError, "err/"+id, brief(s.LastError)
	}
	return c
}

// stepOf names where an environment's pipeline is, as the page shows it.
func stepOf(s engine.Status) stepView {
	busy := func(word string) stepView { return stepView{Word: word, Symbol: "↻", Class: "busy"} }
	switch s.Phase {
	case engine.Failed:
		word := "failed"
		if s.FailedStep != "" {
			word += " at " + string(s.FailedStep)
		}
		return stepView{Word: word, Symbol: "✗", Class: "fail"}
	case engine.Rendering:
		return busy("rendering")
	case engine.Applying:
		return busy("applying")
	case engine.Waiting:
		return busy("waiting")
	case engine.Testing:
		return busy("testing")
	case engine.Checking:
		return busy("checks")
	case engine.Promoting:
		return busy("promoting")
	case engine.Idle, "":
		switch {
		case s.Revision == "":
			return stepView{Word: "pending", Symbol: "○", Class: "idle"}
		case s.Health == engine.HealthHealthy:
			return stepView{Word: "healthy", Symbol: "✓", Class: "ok"}
		case s.Health == engine.HealthUnhealthy:
			return stepView{Word: "unhealthy", Symbol: "!", Class: "warn"}
		}
		return stepView{Word: "idle", Symbol: "○", Class: "idle"}
	}
	return busy(strings.ToLower(string(s.Phase)))
}

// brief is an error's first line, cut to fit a cell; the cell holds the rest.
func brief(msg string) string {
	line, _, _ := strings.Cut(msg, "\n")
	if r := []rune(line); len(r) > 90 {
		return string(r[:89]) + "…"
	}
	return line
}

// delta turns apply's ChangeSet summary ("2 created, 1 configured, 17
// unchanged") into "+2 ~1 −0"; a summary without counts is kept as it is.
func delta(summary string) string {
	var created, configured, deleted int
	found := false
	for part := range strings.SplitSeq(summary, ", ") {
		count, action, ok := strings.Cut(part, " ")
		n, err := strconv.Atoi(count)
		if !ok || err != nil {
			continue
		}
		found = true
		switch action {
		case "created":
			created = n
		case "configured":
			configured = n
		case "deleted":
			deleted = n
		}
	}
	if !found {
		return summary
	}
	return "+" + strconv.Itoa(created) + " ~" + strconv.Itoa(configured) + " −" + strconv.Itoa(deleted)
}

func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// ago is how long before now t was; the script keeps the text current.
func ago(t, now time.Time) agoView {
	if t.IsZero() {
		return agoView{}
	}
	d := max(now.Sub(t), 0)
	var text string
	switch {
	case d < 10*time.Second:
		text = "just now"
	case d < time.Minute:
		text = fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		text = fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		text = fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		text = fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
	return agoView{ISO: t.UTC().Format(time.RFC3339), Text: text}
}
