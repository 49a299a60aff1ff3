package cli

import (
	"fmt"
	"sort"
	"strings"
)

func init() {
	register(&command{name: "completion", usage: "completion bash|zsh|fish", minArgs: 1, maxArgs: 1, local: true,
		summary: "print a shell completion script (bash, zsh or fish)",
		help: `Prints a completion script for the shell named: commands, each command's
flags, and the reference topics of loom help and loom docs.

  source <(loom completion bash)                        # in ~/.bashrc
  loom completion zsh > "${fpath[1]}/_loom"             # zsh
  loom completion fish > ~/.config/fish/completions/loom.fish`,
		run: (*app).completion})
}

func (a *app) completion() error {
	switch sh := a.p.args[0]; sh {
	case "bash":
		fmt.Fprint(a.stdout, a.bashCompletion())
	case "zsh":
		// zsh runs bash completion functions through bashcompinit.
		fmt.Fprintf(a.stdout, "#compdef %s\nautoload -U +X bashcompinit && bashcompinit\n%s", a.prog(), a.bashCompletion())
	case "fish":
		fmt.Fprint(a.stdout, a.fishCompletion())
	default:
		return usagef("no completion for the shell %q (bash, zsh or fish)", sh)
	}
	return nil
}

// completionWords: the commands, and for each command its flags (and, for
// help and docs, the topics).
func completionWords() (cmds []string, flags map[string][]string) {
	flags = map[string][]string{}
	for _, c := range commands {
		cmds = append(cmds, c.name)
		for _, f := range c.flags {
			dashes := "--"
			if len(f.name) == 1 {
				dashes = "-"
			}
			flags[c.name] = append(flags[c.name], dashes+f.name)
		}
	}
	sort.Strings(cmds)
	return cmds, flags
}

func (a *app) bashCompletion() string {
	cmds, flags := completionWords()
	fn := "_" + strings.ReplaceAll(a.prog(), "-", "_") + "_complete"
	var b strings.Builder
	fmt.Fprintf(&b, "# bash completion for %s\n%s() {\n", a.prog(), fn)
	b.WriteString("  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} words\n")
	b.WriteString("  if [ \"$COMP_CWORD\" -eq 1 ]; then words=\"" + strings.Join(cmds, " ") + " --help --version\"\n")
	b.WriteString("  else\n    case \"$cmd\" in\n")
	for _, c := range cmds {
		words := flags[c]
		if c == "help" || c == "docs" {
			words = append(append([]string(nil), words...), topicNames()...)
			if c == "help" {
				words = append(words, cmds...)
			}
		}
		if c == "completion" {
			words = append(append([]string(nil), words...), "bash", "zsh", "fish")
		}
		fmt.Fprintf(&b, "      %s) words=\"%s\" ;;\n", c, strings.Join(words, " "))
	}
	b.WriteString("    esac\n  fi\n")
	b.WriteString("  if [[ $cur == -* || $cmd == help || $cmd == docs || $cmd == completion || $COMP_CWORD -eq 1 ]]; then\n")
	b.WriteString("    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n  else\n    COMPREPLY=($(compgen -f -- \"$cur\"))\n  fi\n}\n")
	fmt.Fprintf(&b, "complete -o filenames -F %s %s\n", fn, a.prog())
	return b.String()
}

func (a *app) fishCompletion() string {
	cmds, _ := completionWords()
	byName := map[string]*command{}
	for _, c := range commands {
		byName[c.name] = c
	}
	var b strings.Builder
	p := a.prog()
	fmt.Fprintf(&b, "# fish completion for %s\ncomplete -c %s -f\n", p, p)
	for _, c := range cmds {
		fmt.Fprintf(&b, "complete -c %s -n __fish_use_subcommand -a %s -d %s\n", p, c, fishQuote(byName[c].summary))
	}
	for _, c := range cmds {
		for _, f := range byName[c].flags {
			opt := "-l " + f.name
			if len(f.name) == 1 {
				opt = "-s " + f.name
			}
			req := ""
			if f.arg != "" {
				req = " -r"
			}
			fmt.Fprintf(&b, "complete -c %s -n '__fish_seen_subcommand_from %s' %s%s -d %s\n", p, c, opt, req, fishQuote(f.help))
		}
	}
	for _, c := range []string{"help", "docs"} {
		fmt.Fprintf(&b, "complete -c %s -n '__fish_seen_subcommand_from %s' -a %s\n", p, c, fishQuote(strings.Join(topicNames(), " ")))
	}
	fmt.Fprintf(&b, "complete -c %s -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n", p)
	for _, c := range []string{"run", "validate", "graph", "test", "serve"} {
		if byName[c] != nil {
			fmt.Fprintf(&b, "complete -c %s -n '__fish_seen_subcommand_from %s' -F\n", p, c)
		}
	}
	return b.String()
}

func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
