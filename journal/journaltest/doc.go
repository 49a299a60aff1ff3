// Package journaltest is the conformance suite of journal.Journal: every
// backend runs Run against fresh instances of itself, so the interpreter can
// rely on one set of semantics whatever stores its journal.
package journaltest
