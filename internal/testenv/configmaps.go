package testenv

import (
	"fmt"
	"strings"
)

// ConfigMaps returns n ConfigMaps named prefix-000, prefix-001, … as one YAML
// stream, without a namespace: the bulk of an environment a test makes big.
func ConfigMaps(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s-%03d}\ndata: {value: \"%d\"}\n", prefix, i, i)
	}
	return b.String()
}
