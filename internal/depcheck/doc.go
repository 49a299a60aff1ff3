// Package depcheck holds only a test: it walks `go list -deps` to keep the
// package graph of docs/design.md (leaves stay leaves, backends import only
// journal, definition never imports interpreter or journal).
package depcheck
