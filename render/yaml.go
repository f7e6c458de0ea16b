package render

import (
	"bytes"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
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
			return nil, fmt.Errorf("%s: marshal: %w", objectRef(o), err)
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
