package promote

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/ferry-gitops/ferry/render"
)

// Pin is what a promotion carries from one environment to the next: a Model's
// version and artifact.
type Pin struct {
	Model   string // metadata.name
	Version string // spec.version
	URI     string // spec.artifact.uri
	Digest  string // spec.artifact.digest; "" means no digest
}

// ErrNotPinned reports that a pin file has no Model document for a model, so
// its environment does not run it: the caller reports it and skips the model.
// EditPin wraps it with the file and the model; test for it with errors.Is.
var ErrNotPinned = errors.New("not pinned")

// Pins returns the pin of every Model document in content, the YAML stream of
// file, keyed by metadata.name. A Model document is one of kind Model whose
// apiVersion is of the group ferry.dev or absent. A missing or null field reads
// as "". It fails, naming file, line and Model, on YAML that does not parse, a
// Model that appears twice, a spec or artifact that is not a mapping or uses a
// merge key, and a pin field that is not a single value.
func Pins(file string, content []byte) (map[string]Pin, error) {
	docs, err := parseStream(file, content)
	if err != nil {
		return nil, err
	}
	models, err := indexModels(file, docs)
	if err != nil {
		return nil, err
	}
	pins := make(map[string]Pin, len(models))
	for name, m := range models {
		pins[name] = m.pin
	}
	return pins, nil
}

// EditPin returns content, the YAML stream of file (a pin file), with the Model
// named pin.Model set to pin's version and artifact. Only the bytes of those
// values change, plus a digest line or entry inserted or removed where one side
// has a digest and the other not, and a version, artifact or spec inserted
// where the document lacks it. Every other byte is kept: comments, blank lines,
// key order, quoting, indentation, flow or block style, line endings, other
// documents. A value keeps its quoting style unless it would no longer read as
// the same string, then it is double-quoted; inserted versions are
// double-quoted. Editing a file to the pin it already holds returns it as is.
//
// If file has no Model document for pin.Model, the error wraps ErrNotPinned.
// Other errors name the file, the line and the Model and say what to change:
// the file does not read as a pin file (see Pins), or a value to change is
// written over several lines, carries an anchor, alias or tag. Before
// returning, EditPin parses its result and checks that it holds the pin and is
// otherwise equal to content; if not, it returns an error saying so, never the
// YAML.
func EditPin(file string, content []byte, pin Pin) ([]byte, error) {
	if err := checkPin(pin); err != nil {
		return nil, fmt.Errorf("%s: Model %s: edit pin: %w", file, pin.Model, err)
	}
	docs, err := parseStream(file, content)
	if err != nil {
		return nil, err
	}
	models, err := indexModels(file, docs)
	if err != nil {
		return nil, err
	}
	m, ok := models[pin.Model]
	if !ok {
		return nil, fmt.Errorf("%s: Model %s: %w: the file has no Model document for it; add one to deploy the model in this environment", file, pin.Model, ErrNotPinned)
	}
	e := &pinEditor{srcLines: newSrcLines(content), file: file, model: pin.Model}
	root := docs[m.doc].root
	e.unit = strings.Repeat(" ", cmp.Or(indentUnit(root), 2))
	if err := e.plan(root, pin); err != nil {
		return nil, err
	}
	if len(e.edits) == 0 {
		return bytes.Clone(content), nil
	}
	out, err := e.apply()
	if err == nil {
		err = verifyEdit(file, docs, m.doc, out, pin)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: Model %s: edit pin: the edit does not read back as intended (%w); this is a bug in ferry, edit the pin by hand", file, pin.Model, err)
	}
	return out, nil
}

// checkPin refuses a pin that cannot be written as a one-line value.
func checkPin(p Pin) error {
	for _, f := range []struct{ field, value string }{{"name", p.Model}, {"version", p.Version}, {"uri", p.URI}, {"digest", p.Digest}} {
		if f.value == "" && f.field != "digest" {
			return fmt.Errorf("the pin has no %s", f.field)
		}
		if !utf8.ValidString(f.value) || strings.ContainsFunc(f.value, func(r rune) bool { return !unicode.IsPrint(r) }) {
			return fmt.Errorf("the pin's %s %q is not printable UTF-8", f.field, f.value)
		}
	}
	return nil
}

// document is one document of a YAML stream.
type yamlDoc struct {
	root  *yaml.Node // nil for an empty document
	value any        // root decoded, to compare a document before and after an edit
}

// parse splits content into documents with the YAML decoder, which keeps each
// node's line and column in the whole stream.
func parseStream(file string, content []byte) ([]yamlDoc, error) {
	var docs []yamlDoc
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		var d yamlDoc
		if err == nil && len(n.Content) > 0 {
			d.root = n.Content[0]
			err = n.Decode(&d.value) // also refuses duplicate keys, which the node tree keeps
		}
		if err != nil {
			return nil, fmt.Errorf("%s: read: %w; fix the YAML", file, err)
		}
		docs = append(docs, d)
	}
}

// model is where a Model is pinned: its document's index, and the pin.
type pinned struct {
	doc int
	pin Pin
}

// index finds the Model documents of docs by name and reads their pins.
func indexModels(file string, docs []yamlDoc) (map[string]pinned, error) {
	group, _, _ := strings.Cut(render.ModelAPIVersion, "/")
	models := map[string]pinned{}
	for i, d := range docs {
		api, name := scalarAt(d.root, "apiVersion"), scalarAt(valueAt(d.root, "metadata"), "name")
		if scalarAt(d.root, "kind") != render.ModelKind || name == "" || (api != "" && !strings.HasPrefix(api, group+"/")) {
			continue
		}
		if prev, dup := models[name]; dup {
			return nil, fmt.Errorf("%s:%d: Model %s: pinned twice, first at line %d; remove one of the two documents", file, d.root.Line, name, docs[prev.doc].root.Line)
		}
		pin, err := readPin(file, name, d.root)
		if err != nil {
			return nil, err
		}
		models[name] = pinned{doc: i, pin: pin}
	}
	return models, nil
}

// fields are the nodes of a Model document that hold its pin, each value with
// its key; nil where absent.
type pinFields struct{ specKey, spec, verKey, ver, artKey, art, uriKey, uri, digKey, dig *yaml.Node }

func locatePin(root *yaml.Node) pinFields {
	var f pinFields
	f.specKey, f.spec = lookupKey(root, "spec")
	f.verKey, f.ver = lookupKey(f.spec, "version")
	f.artKey, f.art = lookupKey(f.spec, "artifact")
	f.uriKey, f.uri = lookupKey(f.art, "uri")
	f.digKey, f.dig = lookupKey(f.art, "digest")
	return f
}

func readPin(file, name string, root *yaml.Node) (Pin, error) {
	f, p := locatePin(root), Pin{Model: name}
	bad := func(n *yaml.Node, field, what string) error {
		return fmt.Errorf("%s:%d: Model %s: %s %s", file, n.Line, name, field, what)
	}
	for _, m := range []struct {
		n     *yaml.Node
		field string
	}{{f.spec, "spec"}, {f.art, "spec.artifact"}} {
		if n := unalias(m.n); n != nil && n.Kind != yaml.MappingNode {
			return p, bad(n, m.field, "must be a mapping")
		} else if k, _ := lookupKey(n, "<<"); k != nil {
			return p, bad(k, m.field, "uses a merge key (<<); write its fields out")
		}
	}
	for _, s := range []struct {
		n     *yaml.Node
		field string
		dst   *string
	}{{f.ver, "spec.version", &p.Version}, {f.uri, "spec.artifact.uri", &p.URI}, {f.dig, "spec.artifact.digest", &p.Digest}} {
		if n := unalias(s.n); n != nil && n.Kind != yaml.ScalarNode {
			return p, bad(n, s.field, "must be a single value")
		} else if n != nil && n.ShortTag() != yaml.NodeTagNull {
			*s.dst = n.Value
		}
	}
	return p, nil
}

// lookup returns the key and value nodes of key in the mapping m.
func lookupKey(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m = unalias(m); m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k, m.Content[i+1]
		}
	}
	return nil, nil
}

func valueAt(m *yaml.Node, key string) *yaml.Node {
	_, v := lookupKey(m, key)
	return v
}

// scalar returns the value of key in m if it is one, "" otherwise.
func scalarAt(m *yaml.Node, key string) string {
	if v := unalias(valueAt(m, key)); v != nil && v.Kind == yaml.ScalarNode && v.ShortTag() != yaml.NodeTagNull {
		return v.Value
	}
	return ""
}

func unalias(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// isString reports whether n reads as a string in YAML 1.2, as kyaml and
// kustomize read it, and in YAML 1.1, as the Kubernetes API server reads it.
func readsAsString(n *yaml.Node) bool {
	quoted := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
	return n.Kind == yaml.ScalarNode && n.ShortTag() == yaml.NodeTagString && (quoted || !yaml.IsValueNonString(n.Value))
}

// quote writes v as a YAML scalar in style (plain, single- or double-quoted)
// where that reads back as the string v, and double-quoted where it does not.
// flow says whether the value sits in a flow mapping, where "," and brackets
// end a plain value. It decides by parsing, not from a list of special values.
func quoteScalar(v string, style yaml.Style, flow bool) string {
	text := v
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		return strconv.Quote(v) // checkPin allows printable runes only, so Go's escapes are \" and \\, which YAML shares
	case style&yaml.SingleQuotedStyle != 0:
		text = "'" + strings.ReplaceAll(v, "'", "''") + "'"
	}
	doc := "k: " + text
	if flow {
		doc = "{k: " + text + ", z: 0}"
	}
	var n yaml.Node
	if v == "" || yaml.Unmarshal([]byte(doc), &n) != nil || len(n.Content) != 1 || len(n.Content[0].Content) < 2 {
		return strconv.Quote(v)
	}
	if got := n.Content[0].Content[1]; !readsAsString(got) || got.Value != v {
		return strconv.Quote(v)
	}
	return text
}

// verify checks that out, the edit of the stream docs was read from, holds pin
// in the document target and is otherwise equal to docs.
func verifyEdit(file string, docs []yamlDoc, target int, out []byte, pin Pin) error {
	after, err := parseStream(file, out)
	if err != nil {
		return err
	}
	models, err := indexModels(file, after)
	if err != nil {
		return err
	}
	if len(after) != len(docs) {
		return fmt.Errorf("%d documents became %d", len(docs), len(after))
	}
	if m := models[pin.Model]; m.doc != target || m.pin != pin {
		return fmt.Errorf("the Model reads back as %+v", m.pin)
	}
	f := locatePin(after[target].root)
	for n, want := range map[*yaml.Node]string{f.ver: pin.Version, f.uri: pin.URI, f.dig: pin.Digest} {
		if n = unalias(n); n != nil && want != "" && !readsAsString(n) {
			return fmt.Errorf("line %d: %q does not read as a string", n.Line, n.Value)
		}
	}
	for i := range docs {
		before, now := docs[i].value, after[i].value
		if i == target {
			before, now = withoutPin(before), withoutPin(now)
		}
		// %#v prints maps sorted and NaN as NaN, so equal documents print equal.
		if fmt.Sprintf("%#v", before) != fmt.Sprintf("%#v", now) {
			return fmt.Errorf("document %d changed beyond the pin", i+1)
		}
	}
	return nil
}

// masked returns a copy of a decoded Model without its pin, and without an
// artifact or spec that only held the pin.
func withoutPin(doc any) any {
	m, ok := doc.(map[string]any)
	if !ok {
		return doc
	}
	m = maps.Clone(m)
	spec, ok := m["spec"].(map[string]any)
	if !ok {
		return m
	}
	spec = maps.Clone(spec)
	delete(spec, "version")
	if art, ok := spec["artifact"].(map[string]any); ok {
		art = maps.Clone(art)
		delete(art, "uri")
		delete(art, "digest")
		spec["artifact"] = art
		if len(art) == 0 {
			delete(spec, "artifact")
		}
	}
	m["spec"] = spec
	if len(spec) == 0 {
		delete(m, "spec")
	}
	return m
}

// indentUnit returns how far the first nested block mapping of n is indented
// from its key, 0 if n has none.
func indentUnit(n *yaml.Node) int {
	if n.Kind != yaml.MappingNode || n.Style&yaml.FlowStyle != 0 {
		return 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Content[0].Line > k.Line && v.Content[0].Column > k.Column {
			return v.Content[0].Column - k.Column
		}
		if u := indentUnit(v); u > 0 {
			return u
		}
	}
	return 0
}

func lastLine(n *yaml.Node) int {
	line := n.Line
	for _, c := range n.Content {
		line = max(line, lastLine(c))
	}
	return line
}
