package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	yamlv3 "go.yaml.in/yaml/v3"
)

// maxExpandedNodes bounds how many YAML nodes one file may stand for once its
// aliases are expanded. Real manifests are far below it; a "billion laughs"
// document is far above it and would exhaust memory when kustomize turns it
// into maps.
const maxExpandedNodes = 1_000_000

// checkAliases refuses a YAML file whose aliases expand past maxExpandedNodes.
// It parses to nodes, which shares aliased subtrees instead of copying them,
// and counts the expanded size with memoisation, so the check itself is linear.
func checkAliases(name string, data []byte) error {
	if !bytes.Contains(data, []byte("*")) || !bytes.Contains(data, []byte("&")) {
		return nil // no alias, nothing to expand
	}
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	for {
		var doc yamlv3.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return nil // malformed YAML: kustomize reports it with its own context
		}
		sizes := map[*yamlv3.Node]int{}
		if n := expandedSize(&doc, sizes); n > maxExpandedNodes {
			return fmt.Errorf("%s: YAML aliases expand to more than %d nodes; write the values out instead of nesting aliases", name, maxExpandedNodes)
		}
	}
}

// expandedSize counts n's nodes with aliases expanded, saturating at just
// above the limit so a deep bomb cannot overflow the count.
func expandedSize(n *yamlv3.Node, sizes map[*yamlv3.Node]int) int {
	if s, ok := sizes[n]; ok {
		return s
	}
	sizes[n] = maxExpandedNodes + 1 // an alias cycle counts as unbounded
	size := 1
	if n.Kind == yamlv3.AliasNode && n.Alias != nil {
		size = expandedSize(n.Alias, sizes)
	}
	for _, c := range n.Content {
		size += expandedSize(c, sizes)
		if size > maxExpandedNodes {
			size = maxExpandedNodes + 1
			break
		}
	}
	sizes[n] = size
	return size
}
