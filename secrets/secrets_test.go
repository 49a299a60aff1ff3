package secrets_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/loomwork/loom/secrets"
)

func TestEnv(t *testing.T) {
	t.Setenv("LOOM_SECRET_API_TOKEN", "tok-123")
	t.Setenv("LOOM_SECRET_EMPTY", "")
	ctx := context.Background()
	for _, name := range []string{"api_token", "API_TOKEN", "Api_Token"} {
		v, err := secrets.Resolve(ctx, secrets.Env{}, nil, name)
		if err != nil || v != "tok-123" {
			t.Errorf("Resolve(%q) = %q, %v", name, v, err)
		}
	}
	_, err := secrets.Resolve(ctx, secrets.Env{}, nil, "empty")
	wantErr(t, err, `secret "empty" is not set: set $LOOM_SECRET_EMPTY`)
	names, err := secrets.Env{}.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(names, "API_TOKEN") || contains(names, "EMPTY") {
		t.Errorf("Names() = %v", names)
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, value string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("db-password", "pa ss\n")      // echo's newline is not part of it
	write("tls.key", "line1\nline2\n\n") // only one newline is dropped
	write("..data", "kubernetes link")   // hidden: ignored
	write("windows", "crlf\r\n")         // a CRLF file
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	p := secrets.Dir{Path: dir}
	ctx := context.Background()
	for name, want := range map[string]string{"db_password": "pa ss", "DB_PASSWORD": "pa ss", "tls_key": "line1\nline2\n", "windows": "crlf"} {
		v, err := secrets.Resolve(ctx, p, nil, name)
		if err != nil || v != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", name, v, err, want)
		}
	}
	names, err := p.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"DB_PASSWORD", "TLS_KEY", "WINDOWS"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Names() = %v, want %v", names, want)
	}
	_, err = secrets.Resolve(ctx, p, nil, "nope")
	wantErr(t, err, `secret "nope" is not set: set a file nope in `+dir)

	write("db_password", "other")
	_, err = secrets.Resolve(ctx, p, nil, "db_password")
	wantErr(t, err, `secret "db_password": the secrets directory `+dir+` has two files for secret DB_PASSWORD: db-password and db_password`)

	_, err = secrets.Resolve(ctx, secrets.Dir{Path: filepath.Join(dir, "missing")}, nil, "x")
	if err == nil || !strings.Contains(err.Error(), "the secrets directory cannot be read") {
		t.Errorf("missing directory: %v", err)
	}
}

func TestChain(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOOM_SECRET_TOKEN", "from-env")
	t.Setenv("LOOM_SECRET_ONLY_ENV", "e")
	c := secrets.Chain{secrets.Env{}, secrets.Dir{Path: dir}}
	ctx := context.Background()
	if v, err := secrets.Resolve(ctx, c, nil, "token"); err != nil || v != "from-env" {
		t.Errorf("the environment comes first: %q, %v", v, err)
	}
	_, err := secrets.Resolve(ctx, c, nil, "missing")
	wantErr(t, err, `secret "missing" is not set: set $LOOM_SECRET_MISSING or a file missing in `+dir)

	unknown, listed, err := secrets.Unknown(ctx, c, []string{"token", "only_env", "Missing"})
	if err != nil || !listed || !reflect.DeepEqual(unknown, []string{"Missing"}) {
		t.Errorf("Unknown = %v, %v, %v", unknown, listed, err)
	}
	// A provider that cannot list: nobody can say a name is unknown.
	_, listed, err = secrets.Unknown(ctx, append(c, lookupOnly{}), []string{"missing"})
	if err != nil || listed {
		t.Errorf("Unknown with an unlistable provider = %v, %v", listed, err)
	}
	_, err = secrets.Resolve(ctx, append(secrets.Chain{lookupOnly{}}, c...), nil, "token")
	if err != nil {
		t.Fatal(err)
	}
	var nf *secrets.NotFoundError
	if _, err := secrets.Resolve(ctx, lookupOnly{}, nil, "x"); !errors.As(err, &nf) || err.Error() != `secret "x" is not set` {
		t.Errorf("a provider that says nothing of where: %v", err)
	}
}

func TestResolveBadName(t *testing.T) {
	_, err := secrets.Resolve(context.Background(), secrets.Env{}, nil, "../etc/passwd")
	wantErr(t, err, `"../etc/passwd" is not a secret name: use letters, digits and underscores, not starting with a digit`)
}

func TestResolveRegistersWithMasker(t *testing.T) {
	t.Setenv("LOOM_SECRET_TOKEN", "hunter2")
	m := secrets.NewMasker(nil)
	if _, err := secrets.Resolve(context.Background(), secrets.Env{}, m, "token"); err != nil {
		t.Fatal(err)
	}
	if got := m.String("password hunter2!"); got != "password ***!" {
		t.Errorf("String = %q", got)
	}
}

type lookupOnly struct{}

func (lookupOnly) Lookup(context.Context, string) (string, bool, error) { return "", false, nil }

func TestMaskString(t *testing.T) {
	m := secrets.NewMasker(nil)
	if got := m.String("nothing registered"); got != "nothing registered" {
		t.Errorf("empty masker changed %q", got)
	}
	m.Add("s3cr3t")
	m.Add("s3cr3t-longer") // the longer value wins where both match
	m.Add("a b&c/d")       // URL-escaped forms too
	m.Add("  ")            // whitespace is never registered
	m.Add("-----BEGIN KEY-----\nAAAA1111\nBBBB2222\n-----END KEY-----")
	for in, want := range map[string]string{
		"token=s3cr3t; other=s3cr3t-longer":           "token=***; other=***",
		"https://h/?q=a+b%26c%2Fd and /p/a%20b&c%2Fd": "https://h/?q=*** and /p/***",
		"a log line with BBBB2222 only":               "a log line with *** only",
		"spaces  stay":                                "spaces  stay",
	} {
		if got := m.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	var nilMasker *secrets.Masker
	if got := nilMasker.String("s3cr3t"); got != "s3cr3t" || !nilMasker.Empty() {
		t.Errorf("nil masker: %q", got)
	}
}

func TestMaskJSON(t *testing.T) {
	parent := secrets.NewMasker(nil)
	parent.Add(`q"uote<&>`)
	m := secrets.NewMasker(parent)
	m.Add("12345")
	m.Add("tok")
	for _, c := range []struct{ in, want string }{
		{`{"a":1,"b":"clean"}`, `{"a":1,"b":"clean"}`}, // untouched, byte for byte
		{`{"url":"https://x/?t=tok","n":12345,"k":{"tok":"v"},"l":["12345x"]}`, `{"k":{"***":"v"},"l":["***x"],"n":"***","url":"https://x/?t=***"}`},
		{`"q\"uote\u003c\u0026\u003e and q\"uote<&>"`, `"*** and ***"`},
		{`{"n": 123456}`, `{"n":"***6"}`}, // a number holding a secret becomes a masked string
		{`{"n": 1234}`, `{"n": 1234}`},
		{`not json tok`, `not json ***`},
	} {
		got := string(m.JSON(json.RawMessage(c.in)))
		if got != c.want {
			t.Errorf("JSON(%s) = %s, want %s", c.in, got, c.want)
		}
		if json.Valid([]byte(c.in)) && !json.Valid([]byte(got)) {
			t.Errorf("JSON(%s) is no longer JSON: %s", c.in, got)
		}
	}
	if got := parent.String("tok"); got != "tok" {
		t.Errorf("a child's values leak into its parent: %q", got)
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
