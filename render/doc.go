// Package render turns a checkout and an environment directory into the exact
// objects to apply: it runs kustomize in-process on a file system bounded to the
// checkout, expands Model resources into serving objects, orders the result for
// applying, and reports a content digest and the set of files the build read.
//
// It performs no I/O beyond the checkout (the loader it hands kustomize refuses
// every URL and remote base) and talks to no cluster.
package render
