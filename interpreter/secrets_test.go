package interpreter_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/memory"
	"github.com/loomwork/loom/journal/sealed"
)

// mapSecrets is a provider over a map that counts its lookups.
type mapSecrets struct {
	m     map[string]string
	reads atomic.Int64
}

func (p *mapSecrets) Lookup(_ context.Context, name string) (string, bool, error) {
	p.reads.Add(1)
	v, ok := p.m[strings.ToUpper(name)]
	return v, ok, nil
}

const secretsWF = `
name: wf
input:
  type: object
  properties:
    user: {type: string}
    password: {type: string, writeOnly: true}
steps:
  - id: login
    task: echo
    with: {auth: "Bearer ${ secret('api_token') }", who: "${ input.user }"}
  - id: check
    task: fail
    with: {type: Denied, message: "${ input.user }:${ input.password } refused for ${ secret('api_token') }"}
    fallback: {task: echo, with: "recovered"}
output: '${ {login: steps.login.output, token_length: len(secret("api_token")), check: steps.check.output} }'
`

func allJournaled(t *testing.T, j journal.Journal, id string) []byte {
	t.Helper()
	ctx := context.Background()
	rec, err := j.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := j.Events(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	all := bytes.Join([][]byte{rec.Input, rec.Output, rec.Error}, nil)
	for _, ev := range evs {
		all = append(all, ev.Data...)
	}
	return all
}

func TestSecretsAreResolvedMaskedAndNeverJournaled(t *testing.T) {
	cat, err := definition.Parse("wf.yaml", []byte(secretsWF))
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.New()
	keys, err := sealed.ParseKeys([]byte(mustKeyLine(t)))
	if err != nil {
		t.Fatal(err)
	}
	j := sealed.Wrap(mem, keys)
	p := &mapSecrets{m: map[string]string{"API_TOKEN": "tok-9f8e7d"}}
	reg := interpreter.NewRegistry()
	interpreter.Register(reg, "echo", func(_ context.Context, in any) (any, error) { return in, nil })
	interpreter.Register(reg, "fail", func(_ context.Context, in struct{ Type, Message string }) (any, error) {
		return nil, interpreter.Errorf(in.Type, "%s", in.Message)
	})
	eng := interpreter.New(cat, reg, j, interpreter.WithSecrets(p))
	ctx := context.Background()

	// Without an encrypting journal a write-only input is refused.
	_, err = interpreter.New(cat, reg, memory.New(), interpreter.WithSecrets(p)).Run(ctx, "wf", map[string]any{"user": "robert-7f3a9c", "password": "pw-1a2b3c"})
	if !errors.Is(err, interpreter.ErrInvalidInput) || err.Error() != "invalid input: workflow wf marks input [password] writeOnly, which Loom stores only encrypted: make a key with `loom key new > loom.key` and pass --key-file loom.key (or set $LOOM_KEY_FILE)" {
		t.Fatalf("write-only input without a key: %v", err)
	}

	ex, err := eng.Run(ctx, "wf", map[string]any{"user": "robert-7f3a9c", "password": "pw-1a2b3c"})
	if err != nil {
		t.Fatal(err)
	}
	if ex.State != journal.Completed {
		t.Fatalf("state %s, error %+v", ex.State, ex.Error)
	}
	if got, want := js(ex.Output), `{"check":"recovered","login":{"auth":"Bearer ***","who":"robert-7f3a9c"},"token_length":10}`; got != want {
		t.Errorf("output %s, want %s", got, want)
	}
	if got, want := js(ex.Input), `{"password":"***","user":"robert-7f3a9c"}`; got != want {
		t.Errorf("input as the engine shows it: %s, want %s", got, want)
	}

	// What the engine journaled (opened with the key) holds no secret and
	// no write-only value, except the input itself, which is sealed.
	clear := allJournaled(t, j, ex.ID)
	for _, v := range []string{"tok-9f8e7d", "pw-1a2b3c"} {
		if n := bytes.Count(clear, []byte(v)); n > 0 && !(v == "pw-1a2b3c" && n == 1) {
			t.Errorf("%q journaled %d times: %s", v, n, clear)
		}
	}
	if !bytes.Contains(clear, []byte(`robert-7f3a9c:*** refused for ***`)) {
		t.Errorf("the failed step's message is not masked: %s", clear)
	}
	for _, v := range []string{"tok-9f8e7d", "pw-1a2b3c", "robert-7f3a9c"} {
		if bytes.Contains(allJournaled(t, mem, ex.ID), []byte(v)) {
			t.Errorf("the backend holds %q in clear", v)
		}
	}

	// A replay reads the secret again and matches the masked record.
	before := p.reads.Load()
	res, err := interpreter.New(cat, reg, j, interpreter.WithSecrets(p)).Replay(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Match {
		t.Errorf("replay does not match: %v", res.Diff)
	}
	if p.reads.Load() == before {
		t.Error("the replay did not read the secret again")
	}

	// A secret no provider has fails the step that reads it, saying so.
	ex, err = interpreter.New(cat, reg, j, interpreter.WithSecrets(&mapSecrets{})).Run(ctx, "wf", map[string]any{"user": "x", "password": "y"})
	if err != nil {
		t.Fatal(err)
	}
	if ex.State != journal.Failed || !strings.Contains(ex.Error.Message, `secret "api_token" is not set`) {
		t.Errorf("missing secret: %s %+v", ex.State, ex.Error)
	}
}

func mustKeyLine(t *testing.T) string {
	t.Helper()
	l, err := sealed.NewKeyLine(nil, "k1")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSecretPassedToAChildIsMasked(t *testing.T) {
	cat, err := definition.Parse("wf.yaml", []byte(`
name: parent
steps:
  - id: kid
    call: child
    with: {token: "${ secret('api_token') }"}
---
name: child
steps:
  - return: '${ input.token }'
`))
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.New()
	eng := interpreter.New(cat, interpreter.NewRegistry(), mem, interpreter.WithSecrets(&mapSecrets{m: map[string]string{"API_TOKEN": "tok-abcdef"}}))
	ex, err := eng.Run(context.Background(), "parent", nil)
	if err != nil {
		t.Fatal(err)
	}
	if js(ex.Output) != `"***"` {
		t.Errorf("output %s", js(ex.Output))
	}
	kids, err := mem.List(context.Background(), journal.Filter{ParentID: ex.ID})
	if err != nil || len(kids) != 1 {
		t.Fatalf("children: %v, %v", kids, err)
	}
	if bytes.Contains(allJournaled(t, mem, kids[0].ID), []byte("tok-abcdef")) || bytes.Contains(allJournaled(t, mem, ex.ID), []byte("tok-abcdef")) {
		t.Error("the secret is journaled in clear")
	}
}
