package cli

import (
	"fmt"
	"strings"
)

// flagSpec is one flag a command accepts. A flag with an empty arg is a
// boolean switch; otherwise it takes a value, as `--name VALUE` or
// `--name=VALUE`.
type flagSpec struct {
	name string
	arg  string // the value's placeholder in help; "" for a switch
	help string
}

// parsed is a command line split into positional arguments and flags.
type parsed struct {
	args  []string
	flags map[string]string // switches map to "true"
}

func (p parsed) has(name string) bool {
	_, ok := p.flags[name]
	return ok
}

func (p parsed) get(name string) string { return p.flags[name] }

// parseArgs reads flags anywhere among the positional arguments (the
// standard flag package stops at the first positional one). "--" ends the
// flags; a lone "-" is a positional argument. Flags take one or two dashes.
func parseArgs(cmd string, specs []flagSpec, args []string) (parsed, error) {
	p := parsed{flags: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			p.args = append(p.args, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			p.args = append(p.args, a)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, value, hasValue = name[:k], name[k+1:], true
		}
		spec, ok := lookupFlag(specs, name)
		if !ok {
			if cmd == "" {
				return p, usagef("unknown flag %s", a)
			}
			msg := fmt.Sprintf("unknown flag %s for loom %s", flagOf(a), cmd)
			if s := closestFlag(specs, name); s != "" {
				msg += fmt.Sprintf(" (did you mean --%s?)", s)
			}
			return p, usagef("%s", msg)
		}
		if spec.arg == "" {
			if hasValue {
				switch value {
				case "true", "1":
					p.flags[spec.name] = "true"
				case "false", "0":
					delete(p.flags, spec.name)
				default:
					return p, usagef("flag --%s takes no value", spec.name)
				}
				continue
			}
			p.flags[spec.name] = "true"
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return p, usagef("flag --%s needs a value (%s)", spec.name, spec.arg)
			}
			i++
			value = args[i]
		}
		p.flags[spec.name] = value
	}
	return p, nil
}

// closestFlag returns the flag of specs nearest to a mistyped name, or "".
func closestFlag(specs []flagSpec, name string) string {
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.name)
	}
	return closest(name, names)
}

func flagOf(a string) string {
	if k := strings.IndexByte(a, '='); k >= 0 {
		return a[:k]
	}
	return a
}

func lookupFlag(specs []flagSpec, name string) (flagSpec, bool) {
	switch name {
	case "h":
		name = "help"
	case "v":
		// -v is --verbose, unless the command has a -v of its own
		if _, ok := find(specs, "v"); !ok {
			name = "verbose"
		}
	}
	return find(specs, name)
}

func find(specs []flagSpec, name string) (flagSpec, bool) {
	for _, s := range specs {
		if s.name == name {
			return s, true
		}
	}
	return flagSpec{}, false
}
