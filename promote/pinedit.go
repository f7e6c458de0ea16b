package promote

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// srcLines is a file's bytes with the offsets its lines start at, counted as the
// YAML parser counts them, so that a node's Line and Column give its offset.
type srcLines struct {
	b      []byte
	starts []int
}

func newSrcLines(b []byte) *srcLines {
	s := &srcLines{b: b, starts: []int{0}}
	if bytes.HasPrefix(b, []byte("\uFEFF")) {
		s.starts[0] = 3 // the parser does not count a byte order mark as a column
	}
	for i := s.starts[0]; i < len(b); {
		if n := s.breakAt(i); n > 0 {
			i += n
			s.starts = append(s.starts, i)
		} else {
			i++
		}
	}
	return s
}

// breakAt returns the length of the line break at i, 0 if none starts there.
func (s *srcLines) breakAt(i int) int {
	if c := s.b[i]; c != '\n' && c != '\r' && c != 0xC2 && c != 0xE2 {
		return 0
	}
	for _, br := range []string{"\r\n", "\r", "\n", "\u0085", "\u2028", "\u2029"} { // as the parser's is_break
		if bytes.HasPrefix(s.b[i:], []byte(br)) {
			return len(br)
		}
	}
	return 0
}

func (s *srcLines) offset(n *yaml.Node) (int, bool) {
	if n.Line < 1 || n.Line > len(s.starts) {
		return 0, false
	}
	i := s.starts[n.Line-1]
	for c := 1; c < n.Column; c++ { // columns count runes
		if i >= len(s.b) || s.breakAt(i) > 0 {
			return 0, false
		}
		_, w := utf8.DecodeRune(s.b[i:])
		i += w
	}
	return i, true
}

func (s *srcLines) lineEnd(i int) int {
	for i < len(s.b) && s.breakAt(i) == 0 {
		i++
	}
	return i
}

func (s *srcLines) nextLine(i int) int {
	i = s.lineEnd(i)
	if i < len(s.b) {
		i += s.breakAt(i)
	}
	return i
}

func (s *srcLines) lineStart(i int) int {
	j, found := slices.BinarySearch(s.starts, i)
	if !found {
		j--
	}
	return s.starts[max(j, 0)]
}

// unterminated reports whether the last line has no line break.
func (s *srcLines) unterminated() bool { return s.starts[len(s.starts)-1] < len(s.b) }

// eol is the file's line break: that of its first line, or LF.
func (s *srcLines) eol() string {
	if len(s.starts) > 1 {
		return string(s.b[s.lineEnd(s.starts[0]):s.starts[1]])
	}
	return "\n"
}

// edit replaces the bytes [at, end) with text.
type byteEdit struct {
	at, end int
	text    string
}

// editor plans the edits of one Model document of a pin file.
type pinEditor struct {
	*srcLines
	file, model string
	unit        string // one level of indentation in the document
	edits       []byteEdit
}

func (e *pinEditor) refuse(n *yaml.Node, field, msg string) error {
	return fmt.Errorf("%s:%d: Model %s: %s %s", e.file, n.Line, e.model, field, msg)
}

func (e *pinEditor) plan(root *yaml.Node, pin Pin) error {
	f := locatePin(root)
	ver := "version: " + quoteScalar(pin.Version, yaml.DoubleQuotedStyle, false)
	if f.spec == nil {
		if root.Style&yaml.FlowStyle != 0 {
			return e.refuse(root, "spec", "is missing from a flow-style document; add spec with version and artifact to it")
		}
		lines := []string{"spec:", e.unit + ver}
		for _, l := range e.artifact(pin, false) {
			lines = append(lines, e.unit+l)
		}
		e.insertLines(e.docEnd(root), indentOf(root), lines)
		return nil
	}
	if err := e.editable(f.spec, "spec"); err != nil {
		return err
	}
	flow := f.spec.Style&yaml.FlowStyle != 0
	var after []string // what goes after the version
	if f.art == nil {
		after = e.artifact(pin, flow)
	} else if err := e.planArtifact(f, pin); err != nil {
		return err
	}
	if f.ver == nil {
		return e.first(f.specKey, f.spec, append([]string{ver}, after...))
	}
	end, err := e.set(f.ver, "spec.version", pin.Version, flow)
	if err == nil && len(after) > 0 {
		err = e.after(f.verKey, end, flow, after)
	}
	return err
}

func (e *pinEditor) planArtifact(f pinFields, pin Pin) error {
	if err := e.editable(f.art, "spec.artifact"); err != nil {
		return err
	}
	if f.dig != nil {
		if err := e.editable(f.dig, "spec.artifact.digest"); err != nil {
			return err
		}
	}
	flow := f.art.Style&yaml.FlowStyle != 0
	addDigest := f.dig == nil && pin.Digest != ""
	if f.dig != nil && pin.Digest != "" {
		if _, err := e.set(f.dig, "spec.artifact.digest", pin.Digest, flow); err != nil {
			return err
		}
	} else if f.dig != nil && f.dig.Value != "" && f.dig.ShortTag() != yaml.NodeTagNull {
		if err := e.remove(f.digKey, f.dig, "spec.artifact.digest", flow); err != nil {
			return err
		}
	}
	if f.uri == nil {
		entries := []string{"uri: " + quoteScalar(pin.URI, 0, flow)}
		if addDigest {
			entries = append(entries, "digest: "+quoteScalar(pin.Digest, 0, flow))
		}
		return e.first(f.artKey, f.art, entries)
	}
	end, err := e.set(f.uri, "spec.artifact.uri", pin.URI, flow)
	if err == nil && addDigest {
		err = e.after(f.uriKey, end, flow, []string{"digest: " + quoteScalar(pin.Digest, f.uri.Style, flow)})
	}
	return err
}

// artifact returns a new artifact mapping: block lines, or one flow entry.
func (e *pinEditor) artifact(pin Pin, flow bool) []string {
	entries := []string{"uri: " + quoteScalar(pin.URI, 0, flow)}
	if pin.Digest != "" {
		entries = append(entries, "digest: "+quoteScalar(pin.Digest, 0, flow))
	}
	if flow {
		return []string{"artifact: {" + strings.Join(entries, ", ") + "}"}
	}
	for i := range entries {
		entries[i] = e.unit + entries[i]
	}
	return append([]string{"artifact:"}, entries...)
}

// editable refuses a node whose bytes cannot be changed on their own.
func (e *pinEditor) editable(n *yaml.Node, field string) error {
	switch {
	case n.Kind == yaml.AliasNode:
		return e.refuse(n, field, "is an alias (*"+n.Value+"); write the value out instead")
	case n.Anchor != "":
		return e.refuse(n, field, "has an anchor (&"+n.Anchor+"); remove the anchor and write out its aliases")
	case n.Style&yaml.TaggedStyle != 0:
		return e.refuse(n, field, "has the tag "+n.Tag+"; remove the tag (quote the value instead)")
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return e.refuse(n, field, "is a multi-line block scalar; write the value on one line")
	}
	return nil
}

// span returns the offsets of the single-line scalar n.
func (e *pinEditor) span(n *yaml.Node, field string) (start, end int, err error) {
	i, ok := e.offset(n)
	if !ok {
		return 0, 0, e.refuse(n, field, "cannot be found in the file's bytes; report this as a bug")
	}
	multi := e.refuse(n, field, "spans several lines; write the value on one line")
	quoted := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
	if quoted && (i == len(e.b) || e.b[i] != '"' && e.b[i] != '\'') {
		return 0, 0, e.refuse(n, field, "cannot be found in the file's bytes; report this as a bug")
	}
	if !quoted {
		if !bytes.HasPrefix(e.b[i:], []byte(n.Value)) {
			return 0, 0, multi // a plain value's bytes are its value, unless it is folded over lines
		}
		return i, i + len(n.Value), nil
	}
	q := e.b[i]
	for j := i + 1; j < len(e.b) && e.breakAt(j) == 0; j++ {
		switch {
		case q == '"' && e.b[j] == '\\':
			j++ // skip the escaped byte; an escaped line break is caught below
			if j < len(e.b) && e.breakAt(j) > 0 {
				return 0, 0, multi
			}
		case q == '\'' && e.b[j] == '\'' && j+1 < len(e.b) && e.b[j+1] == '\'':
			j++
		case e.b[j] == q:
			return i, j + 1, nil
		}
	}
	return 0, 0, multi
}

// set plans n's change to want and returns the end of n's bytes.
func (e *pinEditor) set(n *yaml.Node, field, want string, flow bool) (int, error) {
	if err := e.editable(n, field); err != nil {
		return 0, err
	}
	start, end, err := e.span(n, field)
	if err != nil || (readsAsString(n) && n.Value == want) {
		return end, err
	}
	text := quoteScalar(want, n.Style, flow)
	if start == end && start > 0 && e.b[start-1] == ':' {
		text = " " + text // an empty value sits right after its key's colon
	}
	e.edits = append(e.edits, byteEdit{start, end, text})
	return end, nil
}

// remove plans the removal of key k and its value v: the whole line in a block
// mapping, the entry and a comma in a flow mapping.
func (e *pinEditor) remove(k, v *yaml.Node, field string, flow bool) error {
	_, end, err := e.span(v, field)
	start, ok := e.offset(k)
	if err != nil || !ok {
		return cmp.Or(err, e.refuse(k, field, "cannot be found in the file's bytes; report this as a bug"))
	}
	if flow {
		i := start
		for i > 0 && strings.IndexByte(" \t\r\n", e.b[i-1]) >= 0 {
			i--
		}
		if i > 0 && e.b[i-1] == ',' {
			start = i - 1 // the comma before the entry
		} else if j := skipBytes(e.b, end, " \t\r\n"); j < len(e.b) && e.b[j] == ',' {
			end = skipBytes(e.b, j+1, " \t") // the comma after the first entry
		}
		e.edits = append(e.edits, byteEdit{start, end, ""})
		return nil
	}
	if len(bytes.TrimLeft(e.b[e.lineStart(start):start], " ")) > 0 {
		return e.refuse(k, field, "shares its line with another key; put it on a line of its own")
	}
	start, end = e.lineStart(start), e.nextLine(end)
	if end == len(e.b) && e.unterminated() && start > 0 {
		start = e.lineEnd(e.lineStart(start - 1)) // keep the file ending without a line break
	}
	e.edits = append(e.edits, byteEdit{start, end, ""})
	return nil
}

// first plans entries as the first keys of the mapping m, the value of key.
func (e *pinEditor) first(key, m *yaml.Node, entries []string) error {
	if m.Style&yaml.FlowStyle != 0 {
		if len(m.Content) > 0 {
			at, ok := e.offset(m.Content[0])
			return e.insert(at, ok, key, strings.Join(entries, ", ")+", ")
		}
		at, ok := e.offset(m)
		return e.insert(at+1, ok, key, strings.Join(entries, ", "))
	}
	at, ok := e.offset(key)
	if !ok || len(m.Content) == 0 || m.Content[0].Line <= key.Line {
		return e.refuse(key, key.Value, "has an unexpected layout; put its first key on the line after it")
	}
	e.insertLines(e.nextLine(at), indentOf(m.Content[0]), entries)
	return nil
}

// after plans entries after key's value, which ends at end.
func (e *pinEditor) after(key *yaml.Node, end int, flow bool, entries []string) error {
	if flow {
		return e.insert(end, true, key, ", "+strings.Join(entries, ", "))
	}
	e.insertLines(e.nextLine(end), indentOf(key), entries)
	return nil
}

func (e *pinEditor) insert(at int, ok bool, n *yaml.Node, text string) error {
	if !ok || at > len(e.b) {
		return e.refuse(n, n.Value, "cannot be found in the file's bytes; report this as a bug")
	}
	e.edits = append(e.edits, byteEdit{at, at, text})
	return nil
}

// insertLines plans lines, indented, at the line start at, or after the last
// line if the file does not end with a line break.
func (e *pinEditor) insertLines(at int, indent string, lines []string) {
	var b strings.Builder
	eof := at == len(e.b) && e.unterminated()
	for _, l := range lines {
		if eof {
			b.WriteString(e.eol())
		}
		b.WriteString(indent + l)
		if !eof {
			b.WriteString(e.eol())
		}
	}
	e.edits = append(e.edits, byteEdit{at, at, b.String()})
}

// docEnd returns where a new last key of the block mapping root goes: after
// its last node and any lines indented below root's keys (the rest of a
// multi-line value), before trailing blank lines, comments and "---".
func (e *pinEditor) docEnd(root *yaml.Node) int {
	at := len(e.b)
	if line := lastLine(root); line <= len(e.starts) {
		at = e.nextLine(e.starts[line-1])
	}
	for i := at; i < len(e.b); i = e.nextLine(i) {
		line := e.b[i:e.lineEnd(i)]
		rest := bytes.TrimLeft(line, " \t")
		switch {
		case len(rest) == 0: // blank: part of the document only if more of it follows
		case len(line)-len(rest) >= root.Column || rest[0] == '}' || rest[0] == ']':
			at = e.nextLine(i)
		default:
			return at
		}
	}
	return at
}

func (e *pinEditor) apply() ([]byte, error) {
	slices.SortStableFunc(e.edits, func(a, b byteEdit) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.end, b.end)) })
	var out bytes.Buffer
	last := 0
	for _, ed := range e.edits {
		if ed.at < last {
			return nil, fmt.Errorf("edits overlap at byte %d", ed.at)
		}
		out.Write(e.b[last:ed.at])
		out.WriteString(ed.text)
		last = ed.end
	}
	out.Write(e.b[last:])
	return out.Bytes(), nil
}

func skipBytes(b []byte, i int, set string) int {
	for i < len(b) && strings.IndexByte(set, b[i]) >= 0 {
		i++
	}
	return i
}

func indentOf(n *yaml.Node) string { return strings.Repeat(" ", max(n.Column-1, 0)) }
