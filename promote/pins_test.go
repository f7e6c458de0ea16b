package promote

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var (
	fraud130         = Pin{Model: "fraud-detector", Version: "1.3.0", URI: "s3://models/fraud/1.3.0", Digest: "sha256:" + strings.Repeat("1", 64)}
	fraud130NoDigest = Pin{Model: "fraud-detector", Version: "1.3.0", URI: "s3://models/fraud/1.3.0"}
)

// pinCases are the golden cases under testdata/pins/<dir>/: EditPin turns
// in.yaml into want.yaml, or refuses it with an error containing err.
var pinCases = []struct {
	name, dir string
	pin       Pin
	err       string
}{
	{"a block-style pin changes version, uri and digest and nothing else", "block-style", fraud130, ""},
	{"a flow-style artifact keeps its braces and its double-quoted digest", "flow-artifact", fraud130, ""},
	{"single-quoted values stay single-quoted", "single-quoted", fraud130, ""},
	{"a plain version that would read as a number is double-quoted while a plain uri stays plain", "plain-becomes-quoted",
		Pin{Model: "fraud-detector", Version: "1.10", URI: "s3://models/fraud/1.10"}, ""},
	{"a digest the pin no longer has is removed with its line and comment", "drop-digest-block", fraud130NoDigest, ""},
	{"a digest the pin no longer has is removed from a flow artifact with the comma before it", "drop-digest-flow", fraud130NoDigest, ""},
	{"a digest written first in a flow artifact is removed with the comma after it", "drop-first-digest-flow", fraud130NoDigest, ""},
	{"a digest the pin adds goes on a line after the uri, indented like it", "add-digest-block", fraud130, ""},
	{"a digest the pin adds is appended to a flow artifact in the uri's quoting", "add-digest-flow", fraud130, ""},
	{"an empty digest is filled in and keeps its comment", "empty-digest", fraud130, ""},
	{"a null digest stays as it is when the pin has none", "null-digest", fraud130NoDigest, ""},
	{"a missing version becomes the first key of spec", "missing-version", fraud130, ""},
	{"a missing artifact goes after the version as a block", "missing-artifact", fraud130, ""},
	{"a missing uri becomes the first key of artifact", "missing-uri", fraud130, ""},
	{"a Model without spec gets one at the end of its document, indented like the rest", "missing-spec", fraud130, ""},
	{"a flow-style spec gets its missing artifact as a flow mapping after the version", "flow-spec", fraud130, ""},
	{"CRLF line endings survive, inserted lines included", "crlf", fraud130, ""},
	{"a file without a final line break still has none after a digest is added at its end", "no-final-newline-add", fraud130, ""},
	{"a file without a final line break still has none after its last line is removed", "no-final-newline-remove", fraud130NoDigest, ""},

	{"a folded version is refused, naming its line", "folded-version", fraud130,
		"in.yaml:6: Model fraud-detector: spec.version is a multi-line block scalar; write the value on one line"},
	{"a literal uri is refused", "literal-uri", fraud130,
		"in.yaml:8: Model fraud-detector: spec.artifact.uri is a multi-line block scalar; write the value on one line"},
	{"a plain uri folded over two lines is refused", "multi-line-plain-uri", fraud130,
		"in.yaml:8: Model fraud-detector: spec.artifact.uri spans several lines; write the value on one line"},
	{"a version with an anchor is refused, since its aliases would change too", "anchored-version", fraud130,
		"in.yaml:4: Model fraud-detector: spec.version has an anchor (&v); remove the anchor and write out its aliases"},
	{"a uri that is an alias is refused", "aliased-uri", fraud130,
		"in.yaml:10: Model fraud-detector: spec.artifact.uri is an alias (*u); write the value out instead"},
	{"a version with an explicit tag is refused", "tagged-version", fraud130,
		"in.yaml:6: Model fraud-detector: spec.version has the tag !!str; remove the tag (quote the value instead)"},
	{"a Model pinned twice in one file is refused", "duplicate-model", fraud130,
		"in.yaml:8: Model fraud-detector: pinned twice, first at line 1; remove one of the two documents"},
	{"a spec that merges another mapping in is refused", "merge-key", fraud130,
		"in.yaml:8: Model fraud-detector: spec uses a merge key (<<); write its fields out"},
	{"a flow-style document without spec is refused", "flow-document-without-spec", fraud130,
		"in.yaml:1: Model fraud-detector: spec is missing from a flow-style document; add spec with version and artifact to it"},
}

// TestEditPin edits each testdata/pins/<case>/in.yaml and compares the result
// with want.yaml beside it. Regenerate with: go test ./promote -update
func TestEditPin(t *testing.T) {
	for _, tc := range pinCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "pins", tc.dir)
			in := filepath.Join(dir, "in.yaml")
			content, err := os.ReadFile(in)
			require.NoError(t, err)

			got, err := EditPin(in, content, tc.pin)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.NotErrorIs(t, err, ErrNotPinned)
				return
			}
			require.NoError(t, err)
			golden := filepath.Join(dir, "want.yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "missing golden file: run go test ./promote -update")
			assert.Equal(t, string(want), string(got))
		})
	}
}

func TestEditPinChangesOnlyTheLinesThePinNeeds(t *testing.T) {
	cases := []struct {
		name, env      string
		pin            Pin
		removed, added int
	}{
		{"promoting fraud-detector from staging into prod rewrites its version, uri and digest lines", "prod", fraud130, 3, 3},
		{"promoting fraud-detector from dev into staging rewrites the same three lines", "staging",
			Pin{Model: "fraud-detector", Version: "1.4.0", URI: "s3://models/fraud/1.4.0", Digest: "sha256:" + strings.Repeat("4", 64)}, 3, 3},
		{"promoting sentiment without a digest into prod rewrites two lines", "prod",
			Pin{Model: "sentiment", Version: "2.1.0", URI: "hf://acme/sentiment-2.1.0"}, 2, 2},
		{"promoting sentiment with a digest into prod also adds the digest line", "prod",
			Pin{Model: "sentiment", Version: "2.1.0", URI: "hf://acme/sentiment-2.1.0", Digest: "sha256:" + strings.Repeat("5", 64)}, 2, 3},
		{"a pin without a digest drops the digest line", "dev",
			Pin{Model: "fraud-detector", Version: "1.4.1", URI: "s3://models/fraud/1.4.1"}, 3, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join("testdata", "pins", "environments", tc.env+".yaml")
			in, err := os.ReadFile(file)
			require.NoError(t, err)
			before, err := Pins(file, in)
			require.NoError(t, err)

			out, err := EditPin(file, in, tc.pin)
			require.NoError(t, err)

			removed, added := lineDiff(in, out)
			assert.Equal(t, tc.removed, removed, "lines removed or rewritten")
			assert.Equal(t, tc.added, added, "lines added or rewritten")
			after, err := Pins(file, out)
			require.NoError(t, err)
			before[tc.pin.Model] = tc.pin
			assert.Equal(t, before, after, "only the promoted Model's pin changes")
		})
	}
}

// lineDiff counts the lines of a that b drops or rewrites, and the lines b
// adds or rewrites.
func lineDiff(a, b []byte) (removed, added int) {
	m := difflib.NewMatcher(difflib.SplitLines(string(a)), difflib.SplitLines(string(b)))
	for _, op := range m.GetOpCodes() {
		if op.Tag != 'e' {
			removed += op.I2 - op.I1
			added += op.J2 - op.J1
		}
	}
	return removed, added
}

func TestEditPinToThePinAFileHoldsReturnsItByteForByte(t *testing.T) {
	for _, tc := range pinCases {
		if tc.err != "" {
			continue
		}
		t.Run("after "+tc.name, func(t *testing.T) {
			file := filepath.Join("testdata", "pins", tc.dir, "want.yaml")
			want, err := os.ReadFile(file)
			require.NoError(t, err)
			got, err := EditPin(file, want, tc.pin)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
		})
	}
	files, err := filepath.Glob(filepath.Join("testdata", "pins", "environments", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run("in "+file, func(t *testing.T) {
			in, err := os.ReadFile(file)
			require.NoError(t, err)
			pins, err := Pins(file, in)
			require.NoError(t, err)
			for _, pin := range pins {
				got, err := EditPin(file, in, pin)
				require.NoError(t, err)
				assert.Equal(t, string(in), string(got), "Model %s", pin.Model)
			}
		})
	}
}

func TestEditPinReportsAModelTheFileDoesNotPin(t *testing.T) {
	file := filepath.Join("testdata", "pins", "environments", "staging.yaml")
	in, err := os.ReadFile(file)
	require.NoError(t, err)
	_, err = EditPin(file, in, Pin{Model: "sentiment", Version: "2.1.0", URI: "hf://acme/sentiment-2.1.0"})
	require.ErrorIs(t, err, ErrNotPinned)
	assert.EqualError(t, err, file+": Model sentiment: not pinned: the file has no Model document for it; add one to deploy the model in this environment")
}

func TestEditPinRefusesAPinItCannotWriteOnOneLine(t *testing.T) {
	cases := []struct {
		name string
		pin  Pin
		err  string
	}{
		{"a pin without a version", Pin{Model: "fraud-detector", URI: "s3://x"}, "the pin has no version"},
		{"a pin without a uri", Pin{Model: "fraud-detector", Version: "1"}, "the pin has no uri"},
		{"a version with a line break", Pin{Model: "fraud-detector", Version: "1\n2", URI: "s3://x"}, `the pin's version "1\n2" is not printable UTF-8`},
		{"a digest that is not UTF-8", Pin{Model: "fraud-detector", Version: "1", URI: "s3://x", Digest: "\xff"}, `the pin's digest "\xff" is not printable UTF-8`},
	}
	in, err := os.ReadFile(filepath.Join("testdata", "pins", "environments", "prod.yaml"))
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := EditPin("prod.yaml", in, tc.pin)
			assert.EqualError(t, err, "prod.yaml: Model fraud-detector: edit pin: "+tc.err)
		})
	}
}

func TestEditPinKeepsTheFilesLineEndings(t *testing.T) {
	dir := filepath.Join("testdata", "pins")
	crlf, err := os.ReadFile(filepath.Join(dir, "crlf", "in.yaml"))
	require.NoError(t, err)
	require.Equal(t, strings.Count(string(crlf), "\n"), strings.Count(string(crlf), "\r\n"), "testdata/pins/crlf/in.yaml must use CRLF line endings (was it normalised by git?)")
	out, err := EditPin("in.yaml", crlf, fraud130)
	require.NoError(t, err)
	assert.Equal(t, strings.Count(string(out), "\n"), strings.Count(string(out), "\r\n"), "every line of the result ends in CRLF")

	for _, c := range []struct {
		dir string
		pin Pin
	}{{"no-final-newline-add", fraud130}, {"no-final-newline-remove", fraud130NoDigest}} {
		in, err := os.ReadFile(filepath.Join(dir, c.dir, "in.yaml"))
		require.NoError(t, err)
		require.NotEqual(t, byte('\n'), in[len(in)-1], "testdata/pins/%s/in.yaml must not end with a line break", c.dir)
		out, err := EditPin("in.yaml", in, c.pin)
		require.NoError(t, err)
		assert.NotEqual(t, byte('\n'), out[len(out)-1], "%s: the result gained a final line break", c.dir)
	}
}

func TestPinsReadsEveryModelOfAPinFile(t *testing.T) {
	file := filepath.Join("testdata", "pins", "environments", "dev.yaml")
	in, err := os.ReadFile(file)
	require.NoError(t, err)
	pins, err := Pins(file, in)
	require.NoError(t, err)
	assert.Equal(t, map[string]Pin{
		"fraud-detector": {Model: "fraud-detector", Version: "1.4.0", URI: "s3://models/fraud/1.4.0", Digest: "sha256:" + strings.Repeat("4", 64)},
		"sentiment":      {Model: "sentiment", Version: "2.1.0", URI: "hf://acme/sentiment-2.1.0"},
	}, pins)
}

func TestQuoteKeepsAStyleOnlyWhereTheValueReadsBackTheSame(t *testing.T) {
	plain, single, double := yaml.Style(0), yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle
	cases := []struct {
		name, value string
		style       yaml.Style
		flow        bool
		want        string
	}{
		{"a plain uri stays plain", "s3://models/fraud/1.3.0", plain, false, "s3://models/fraud/1.3.0"},
		{"a plain digest stays plain", "sha256:abc", plain, true, "sha256:abc"},
		{"a plain version that reads as a number is double-quoted", "1.10", plain, false, `"1.10"`},
		{"a plain yes, a boolean in YAML 1.1, is double-quoted", "yes", plain, false, `"yes"`},
		{"a plain null is double-quoted", "null", plain, false, `"null"`},
		{"a plain 1e3 is double-quoted", "1e3", plain, false, `"1e3"`},
		{"a plain value with colon and space is double-quoted", "a: b", plain, false, `"a: b"`},
		{"a plain value with space and hash is double-quoted", "a #b", plain, false, `"a #b"`},
		{"a plain value starting with a star is double-quoted", "*x", plain, false, `"*x"`},
		{"a plain value with a comma stays plain in a block mapping", "a,b", plain, false, "a,b"},
		{"a plain value with a comma is double-quoted in a flow mapping", "a,b", plain, true, `"a,b"`},
		{"an empty plain value is double-quoted", "", plain, false, `""`},
		{"a single-quoted value doubles its quotes", "it's", single, false, `'it''s'`},
		{"a single-quoted version that reads as a number stays single-quoted", "1.10", single, false, `'1.10'`},
		{"a double-quoted value escapes its quotes", `say "hi"`, double, true, `"say \"hi\""`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, quoteScalar(tc.value, tc.style, tc.flow))
		})
	}
}

func TestVerifyRefusesAnEditThatChangesMoreThanThePin(t *testing.T) {
	file := filepath.Join("testdata", "pins", "environments", "prod.yaml")
	in, err := os.ReadFile(file)
	require.NoError(t, err)
	docs, err := parseStream(file, in)
	require.NoError(t, err)
	pinned := strings.NewReplacer(`"1.2.0"`, `"1.3.0"`, "fraud/1.2.0", "fraud/1.3.0", strings.Repeat("2", 64), strings.Repeat("1", 64))
	require.NoError(t, verifyEdit(file, docs, 0, []byte(pinned.Replace(string(in))), fraud130), "the precise edit passes")

	more := strings.Replace(pinned.Replace(string(in)), "min: 2", "min: 3", 1)
	assert.ErrorContains(t, verifyEdit(file, docs, 0, []byte(more), fraud130), "document 1 changed beyond the pin")
	number := strings.Replace(pinned.Replace(string(in)), `"1.3.0"`, "1.3", 1)
	assert.ErrorContains(t, verifyEdit(file, docs, 0, []byte(number), Pin{Model: "fraud-detector", Version: "1.3", URI: fraud130.URI, Digest: fraud130.Digest}), `line 6: "1.3" does not read as a string`)
	other := strings.Replace(pinned.Replace(string(in)), "trafficPercent: 10", "trafficPercent: 20", 1)
	assert.ErrorContains(t, verifyEdit(file, docs, 0, []byte(other), fraud130), "document 2 changed beyond the pin")
}

// FuzzEditPin checks that EditPin never panics and that whatever it returns
// reads back as the pin and is a fixed point of the same edit.
func FuzzEditPin(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "pins", "*", "*.yaml"))
	require.NoError(f, err)
	for _, path := range inputs {
		content, err := os.ReadFile(path)
		require.NoError(f, err)
		f.Add(content, fraud130.Model, fraud130.Version, fraud130.URI, fraud130.Digest)
		f.Add(content, "sentiment", "1.10", "hf://acme/it's, #1", "")
	}
	f.Fuzz(func(t *testing.T, content []byte, model, version, uri, digest string) {
		pin := Pin{Model: model, Version: version, URI: uri, Digest: digest}
		out, err := EditPin("fuzz.yaml", content, pin)
		if err != nil {
			return
		}
		pins, err := Pins("fuzz.yaml", out)
		require.NoError(t, err, "the edit does not read back:\n%s", out)
		assert.Equal(t, pin, pins[model])
		again, err := EditPin("fuzz.yaml", out, pin)
		require.NoError(t, err)
		assert.Equal(t, string(out), string(again), "editing to the same pin again changed the file")
	})
}
