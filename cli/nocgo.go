//go:build !cgo

package cli

// sqliteBuilt: without cgo (CGO_ENABLED=0, what Go picks when it finds no
// C compiler) go-sqlite3 is a stub that fails at run time; commands that
// need the SQLite journal say so at start instead.
const sqliteBuilt = false
