package cli

import (
	"fmt"
	"strings"

	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/sealed"
)

// flagKeyFile: every command that opens the journal reads it, so that what
// one command seals another can open.
var flagKeyFile = flagSpec{"key-file", "FILE", "encrypt the journal's payloads with the keys of FILE (default $LOOM_KEY_FILE; make one with loom key new)"}

// init gives --key-file to every command that opens the journal (those
// with --db), after --db. It runs after the command table is built: Go
// initialises a package's files in name order.
func init() {
	for _, c := range commands {
		for i, f := range c.flags {
			if f.name == flagDB.name {
				c.flags = insertFlag(c.flags, i+1, flagKeyFile)
				break
			}
		}
	}
}

// insertFlag inserts f at i (before --help when i is past it), keeping
// the help's order: a command's own flags, then --db and its companions.
func insertFlag(flags []flagSpec, i int, f flagSpec) []flagSpec {
	if i >= len(flags) && len(flags) > 0 && flags[len(flags)-1].name == flagHelp.name {
		i = len(flags) - 1
	}
	return append(flags[:i], append([]flagSpec{f}, flags[i:]...)...)
}

// viewCommands only print: without the key they show what is in clear and
// say the rest is encrypted, where the others refuse to run on it.
var viewCommands = map[string]bool{"status": true, "show": true, "list": true}

// keyFile is --key-file, else $LOOM_KEY_FILE ("" when neither is set).
func (a *app) keyFile() string {
	if a.p.has("key-file") {
		return a.p.get("key-file")
	}
	return a.getenv("LOOM_KEY_FILE")
}

// sealJournal puts the encryption layer around j: with a key file every
// payload is sealed on its way in and opened on its way out; without one
// nothing new is sealed, and a sealed value stops an engine command (it
// must not run on values it cannot read) or reads as "(encrypted with key
// ID)" in status, show and list.
func (a *app) sealJournal(j journal.Journal) (journal.Journal, error) {
	var keys *sealed.Keys
	if path := a.keyFile(); path != "" {
		var err error
		if keys, err = sealed.LoadKeys(path); err != nil {
			j.Close()
			return nil, &cliError{kind: kindRefused, msg: oneLine(err.Error())}
		}
	}
	if a.cmd != nil && viewCommands[a.cmd.name] {
		v := sealed.View(j, keys)
		a.view = v
		return v, nil
	}
	return sealed.Wrap(j, keys), nil
}

// noteEncrypted says, after a view command, which values it could not
// read and how to read them.
func (a *app) noteEncrypted() {
	if a.view == nil {
		return
	}
	if ids := a.view.Hidden(); len(ids) > 0 {
		what := "give its key file with --key-file or $LOOM_KEY_FILE"
		if a.keyFile() != "" {
			what = "the key file does not hold it"
		}
		fmt.Fprintf(a.stderr, "%s: values encrypted with key %s are not shown: %s\n", a.prog(), strings.Join(ids, ", "), what)
	}
}
