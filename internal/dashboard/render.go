package dashboard

import (
	"embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html/template"
	"io"

	"github.com/ferry-gitops/ferry/internal/engine"
)

//go:embed templates
var templateFS embed.FS

// renderer executes the page's templates. Every value reaches the HTML
// through html/template's contextual escaping: no template.HTML is made
// from a status.
type renderer struct {
	t *template.Template
}

func newRenderer() (*renderer, error) {
	t, err := template.New("").ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: parse templates: %w", err)
	}
	return &renderer{t: t}, nil
}

// page writes the whole document.
func (r *renderer) page(w io.Writer, p *pageView) error { return r.t.ExecuteTemplate(w, "page", p) }

// main writes what the page's <main> holds: the refresh event's data.
func (r *renderer) main(w io.Writer, p *pageView) error { return r.t.ExecuteTemplate(w, "main", p) }

// repo writes one repository's section, for a change that adds or removes
// one of its rows.
func (r *renderer) repo(w io.Writer, v *repoView) error { return r.t.ExecuteTemplate(w, "repo", v) }

// env writes one environment's fragment: its cell in every row of its
// repository, and its history panel. Each element carries the id of the
// one it replaces.
func (r *renderer) env(w io.Writer, v *repoView, env string) error {
	frag := struct {
		Cells []cellView
		Env   envView
	}{}
	i := -1
	for j, e := range v.Envs {
		if e.Name == env {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("dashboard: %s has no environment %s", v.Name, env)
	}
	frag.Env = v.Envs[i]
	for _, row := range v.Rows {
		frag.Cells = append(frag.Cells, row.Cells[i])
	}
	return r.t.ExecuteTemplate(w, "env", frag)
}

// envHash identifies one status's content (the clock excluded: "ago" is not
// part of it).
func envHash(s engine.Status) uint64 {
	h := fnv.New64a()
	json.NewEncoder(h).Encode(s) // a Status always marshals: plain fields, no cycles
	return h.Sum64()
}

// combine is the state of a page whose environments have these hashes, in
// configuration order.
func combine(hashes []uint64) string {
	h := fnv.New64a()
	var b [8]byte
	for _, x := range hashes {
		binary.BigEndian.PutUint64(b[:], x)
		h.Write(b[:])
	}
	return fmt.Sprintf("%016x", h.Sum64())
}
