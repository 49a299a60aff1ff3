package cli

import (
	"fmt"

	"github.com/loomwork/loom/journal/sealed"
)

func init() {
	commands = append(commands, &command{name: "key", usage: "key new [--id ID]", minArgs: 1, maxArgs: 1,
		summary: "make a key for encrypting the journal",
		help: `"loom key new" prints a line for a key file: a key id and 32 random bytes
in base64. Save it where only loom can read it, and give the file to every
command with --key-file or $LOOM_KEY_FILE:

    loom key new > loom.key && chmod 600 loom.key

With a key file, every payload the journal stores (inputs, outputs, errors,
resume payloads, builtin values) is encrypted with AES-256-GCM under the
file's first key. To rotate, put a new line first and keep the old ones:
records sealed with an old key id still open. --id names the key (default
a random one).`,
		flags: []flagSpec{{"id", "ID", "the key's id (letters, digits, _.:-; default random)"}, flagHelp},
		run:   (*app).keyCmd})
}

func (a *app) keyCmd() error {
	if sub := a.p.args[0]; sub != "new" {
		return usagef("unknown key command %q: the only one is \"key new\"", sub)
	}
	line, err := sealed.NewKeyLine(nil, a.p.get("id"))
	if err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintln(a.stdout, line)
	return nil
}
