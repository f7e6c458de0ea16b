package render

import (
	"bytes"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ferry-gitops/ferry/internal/object"
)

// YAML returns objs as one YAML stream, documents separated by "---", keys
// sorted, so equal objects always print to equal bytes.
func YAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("%s: marshal: %w", object.String(o), err)
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// decodeStream splits a YAML stream into its documents the way kustomize
// reads them (kyaml's ByteReader: "---" separators, a List unwrapped into its
// items), without expanding aliases. Malformed YAML in any document is an
// error for the whole stream.
func decodeStream(data []byte) ([]*kyaml.RNode, error) {
	return (&kio.ByteReader{Reader: bytes.NewReader(data), OmitReaderAnnotations: true}).Read()
}
