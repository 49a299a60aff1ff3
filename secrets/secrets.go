package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// nameRE is what a secret name may be: GitHub Actions' rule (letters,
// digits and underscores, not starting with a digit). Names are
// case-insensitive: api_token and API_TOKEN are the same secret.
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckName reports whether name can name a secret, with the rule in the
// error.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%q is not a secret name: use letters, digits and underscores, not starting with a digit", name)
	}
	return nil
}

// Canonical is the form names are compared in: upper case, as
// $LOOM_SECRET_NAME spells them.
func Canonical(name string) string { return strings.ToUpper(name) }

// Provider looks secrets up by name. Implementations must be safe for
// concurrent use.
type Provider interface {
	// Lookup returns the value of the secret name (a valid, case-insensitive
	// name); ok is false when the provider has no such secret, and err is
	// for a provider that could not answer.
	Lookup(ctx context.Context, name string) (value string, ok bool, err error)
}

// Lister is a Provider that can list its secrets, in Canonical form, so
// that validation can report an unknown name before anything runs.
type Lister interface {
	Names(ctx context.Context) ([]string, error)
}

// describer says where a provider would look for a secret, for the error
// a missing secret gets ("$LOOM_SECRET_TOKEN", "file /run/secrets/token").
type describer interface {
	where(name string) string
}

// NotFoundError is a secret no provider has.
type NotFoundError struct {
	Name  string
	Where []string // where it was looked for
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("secret %q is not set", e.Name)
	if len(e.Where) > 0 {
		msg += ": set " + strings.Join(e.Where, " or ")
	}
	return msg
}

// EnvPrefix starts the environment variable of every secret.
const EnvPrefix = "LOOM_SECRET_"

// Env reads secret NAME from the environment variable LOOM_SECRET_NAME.
type Env struct{}

// EnvName is the variable Env reads for name.
func EnvName(name string) string { return EnvPrefix + Canonical(name) }

// Lookup reads $LOOM_SECRET_NAME; an empty variable is no secret.
func (Env) Lookup(_ context.Context, name string) (string, bool, error) {
	v := os.Getenv(EnvName(name))
	return v, v != "", nil
}

// Names lists the non-empty LOOM_SECRET_* variables.
func (Env) Names(context.Context) ([]string, error) {
	var names []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if rest, ok := strings.CutPrefix(k, EnvPrefix); ok && v != "" && nameRE.MatchString(rest) {
			names = append(names, Canonical(rest))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (Env) where(name string) string { return "$" + EnvName(name) }

// Dir reads secrets from the files of a directory, one secret per file, as
// Kubernetes (a Secret mounted as a volume) and Docker (/run/secrets) lay
// them out. A file's name is its secret's name, compared in Canonical form
// with '-' and '.' read as '_' (so the file api-token is secret("api_token")).
// Hidden files (Kubernetes' ..data links) are ignored. One trailing newline
// of the file is not part of the value, as files written by `echo` have one.
// Files are read at every lookup, so a rotated secret is seen at once.
type Dir struct {
	Path string
}

// fileKey is the Canonical name a file of the directory stands for.
func fileKey(file string) string {
	return Canonical(strings.NewReplacer("-", "_", ".", "_").Replace(file))
}

// files maps each Canonical name to its file, refusing two files that name
// the same secret.
func (d Dir) files() (map[string]string, error) {
	ents, err := os.ReadDir(d.Path)
	if err != nil {
		return nil, fmt.Errorf("the secrets directory cannot be read: %w", err)
	}
	m := make(map[string]string, len(ents))
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || e.IsDir() {
			continue
		}
		k := fileKey(n)
		if !nameRE.MatchString(k) {
			continue
		}
		if other, ok := m[k]; ok {
			return nil, fmt.Errorf("the secrets directory %s has two files for secret %s: %s and %s", d.Path, k, other, n)
		}
		m[k] = n
	}
	return m, nil
}

// Lookup reads the file of name.
func (d Dir) Lookup(_ context.Context, name string) (string, bool, error) {
	fs, err := d.files()
	if err != nil {
		return "", false, err
	}
	f, ok := fs[Canonical(name)]
	if !ok {
		return "", false, nil
	}
	b, err := os.ReadFile(filepath.Join(d.Path, f))
	if err != nil {
		return "", false, fmt.Errorf("secret %q cannot be read: %w", name, err)
	}
	v := string(b)
	v = strings.TrimSuffix(v, "\n")
	v = strings.TrimSuffix(v, "\r")
	return v, v != "", nil
}

// Names lists the secrets the directory holds.
func (d Dir) Names(context.Context) ([]string, error) {
	fs, err := d.files()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(fs))
	for k := range fs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names, nil
}

func (d Dir) where(name string) string {
	return "a file " + strings.ToLower(name) + " in " + d.Path
}

// Chain asks each provider in turn; the first that has the secret wins.
type Chain []Provider

// Lookup asks each provider in order.
func (c Chain) Lookup(ctx context.Context, name string) (string, bool, error) {
	for _, p := range c {
		v, ok, err := p.Lookup(ctx, name)
		if err != nil || ok {
			return v, ok, err
		}
	}
	return "", false, nil
}

// ErrCannotList is returned by Chain.Names when one of its providers cannot
// list its secrets: then nobody can say a name is unknown.
var ErrCannotList = errors.New("a secret provider cannot list its secrets")

// Names is the union of every provider's names, or ErrCannotList.
func (c Chain) Names(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	for _, p := range c {
		l, ok := p.(Lister)
		if !ok {
			return nil, ErrCannotList
		}
		ns, err := l.Names(ctx)
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

func (c Chain) where(name string) string {
	var ws []string
	for _, p := range c {
		if d, ok := p.(describer); ok {
			ws = append(ws, d.where(name))
		}
	}
	return strings.Join(ws, " or ")
}

// Resolve looks name up in p and registers its value with m (when m is not
// nil), so that everything journaled or printed afterwards masks it. A
// missing secret is a *NotFoundError saying where it was looked for.
func Resolve(ctx context.Context, p Provider, m *Masker, name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	if p == nil {
		return "", &NotFoundError{Name: name}
	}
	v, ok, err := p.Lookup(ctx, name)
	if err != nil {
		return "", fmt.Errorf("secret %q: %w", name, err)
	}
	if !ok {
		e := &NotFoundError{Name: name}
		if d, ok := p.(describer); ok {
			if w := d.where(name); w != "" {
				e.Where = []string{w}
			}
		}
		return "", e
	}
	m.Add(v)
	return v, nil
}

// Unknown returns the names (as given) that p does not list, and whether p
// could list at all; names are compared in Canonical form.
func Unknown(ctx context.Context, p Provider, names []string) ([]string, bool, error) {
	l, ok := p.(Lister)
	if !ok {
		return nil, false, nil
	}
	have, err := l.Names(ctx)
	if errors.Is(err, ErrCannotList) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	set := make(map[string]bool, len(have))
	for _, n := range have {
		set[n] = true
	}
	var unknown []string
	for _, n := range names {
		if !set[Canonical(n)] {
			unknown = append(unknown, n)
		}
	}
	return unknown, true, nil
}
