//go:build cgo

package cli

// sqliteBuilt: this binary was built with cgo, so the SQLite journal
// (go-sqlite3, C code) works.
const sqliteBuilt = true
