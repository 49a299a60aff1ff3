package interpreter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/secrets"
)

// secretState is what an engine knows of secrets: where secret("NAME")
// reads them, and every value read so far, masked wherever the engine
// journals or prints a string.
type secretState struct {
	provider  secrets.Provider
	masker    secrets.Masker
	encrypted bool     // WithEncryption
	plain     sync.Map // definition hash → true: its workflows have no write-only input
}

// WithSecrets makes secret("NAME") in expressions read p (for example
// secrets.Chain{secrets.Env{}, secrets.Dir{Path: "/run/secrets"}}). Without
// it, secret() reads $LOOM_SECRET_NAME. A secret's value is never
// journaled: a replay reads it again.
func WithSecrets(p secrets.Provider) Option { return func(e *Engine) { e.sec.provider = p } }

// WithEncryption says the journal encrypts every payload it stores (it is
// a journal/sealed with a key, perhaps under other wrappers), so inputs
// with write-only fields are accepted. A journal that has an Encrypting()
// bool method is asked directly.
func WithEncryption() Option { return func(e *Engine) { e.sec.encrypted = true } }

// ErrNoEncryption refuses an input with write-only fields when the journal
// does not encrypt.
var ErrNoEncryption = errors.New("write-only input needs an encrypted journal")

// encrypting is what a journal that encrypts its payloads has
// (journal/sealed).
type encrypting interface{ Encrypting() bool }

// RefuseWriteOnly refuses to start wf when its input has write-only
// fields and the journal would store them in clear: Run calls it, and so
// must a service that creates executions itself.
func (e *Engine) RefuseWriteOnly(wf *definition.Workflow) error {
	enc, ok := e.j.(encrypting)
	return CheckWriteOnly(wf, e.sec.encrypted || ok && enc.Encrypting())
}

// CheckWriteOnly refuses (ErrInvalidInput) a run of wf whose input has
// write-only fields unless the journal encrypts: Run calls it, and so can
// a caller that must refuse before touching anything.
func CheckWriteOnly(wf *definition.Workflow, encrypting bool) error {
	if encrypting || !wf.HasWriteOnlyInput() {
		return nil
	}
	return fmt.Errorf("%w: workflow %s marks input %v writeOnly, which Loom stores only encrypted: make a key with `loom key new > loom.key` and pass --key-file loom.key (or set $LOOM_KEY_FILE)",
		ErrInvalidInput, wf.Name, wf.WriteOnlyFields())
}

// masker is the drive's masker: the engine's secrets, and the write-only
// input values of every execution of the drive.
func (d *drive) masker() *secrets.Masker {
	d.maskOnce.Do(func() { d.mask = secrets.NewMasker(&d.eng.sec.masker) })
	return d.mask
}

// maskWriteOnly registers an execution's write-only input values with its
// drive's masker.
func (d *drive) maskWriteOnly(wf *definition.Workflow, input any) {
	for _, v := range wf.WriteOnlyValues(input) {
		d.masker().Add(v)
	}
}

// secretFunc is secret("NAME") for the expressions of x: it reads the
// provider every time (a replay reads it again, nothing is journaled) and
// registers the value for masking.
func (x *exec) secretFunc() func(string) (string, error) {
	return func(name string) (string, error) {
		p := x.d.eng.sec.provider
		if p == nil {
			p = secrets.Env{}
		}
		return secrets.Resolve(context.Background(), p, &x.d.eng.sec.masker, name)
	}
}

// maskWrite masks, in place, every secret value in what an append is about
// to journal: the events' data and the record's output and error. The
// record in hand is updated from the same update, so what the engine
// returns and prints is masked too.
func maskWrite(m *secrets.Masker, evs []journal.Event, upd *journal.Update) {
	if m.Empty() {
		return
	}
	for i := range evs {
		evs[i].Data = m.JSON(evs[i].Data)
	}
	if upd != nil {
		upd.Output = m.JSON(upd.Output)
		upd.Error = m.JSON(upd.Error)
	}
}

// maskValue masks a decoded value (a replay's derived output, compared
// with the masked one recorded).
func maskValue(m *secrets.Masker, v any) any {
	if m.Empty() {
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	out, err := decodeJSON(m.JSON(b))
	if err != nil {
		return v
	}
	return out
}

// MaskedInput is r's input (decoded) as the engine shows it, write-only
// fields masked: for a service that serves records itself.
func (e *Engine) MaskedInput(ctx context.Context, r *journal.Execution, in any) any {
	return e.maskedInput(ctx, r, in)
}

// maskedInput is r's input as the engine shows it: write-only fields
// masked. It finds the input schema in the pinned definition, parsed only
// when it mentions writeOnly; a record listed without its definition is
// looked up once per definition hash.
func (e *Engine) maskedInput(ctx context.Context, r *journal.Execution, in any) any {
	if in == nil {
		return in
	}
	src := r.Definition
	if len(src) == 0 && r.DefinitionHash != "" {
		if c, ok := e.pinned.Load(r.DefinitionHash); ok {
			return maskWith(c.(*definition.Catalog), r.Workflow, in)
		}
		if v, ok := e.sec.plain.Load(r.DefinitionHash); ok && v.(bool) {
			return in
		}
		full, err := e.j.Get(ctx, r.ID)
		if err != nil {
			return WriteOnlyUnknown
		}
		src = full.Definition
		if !bytes.Contains(src, []byte("writeOnly")) {
			e.sec.plain.Store(r.DefinitionHash, true)
		}
		r = &journal.Execution{ID: r.ID, Workflow: r.Workflow, Definition: src, DefinitionHash: r.DefinitionHash}
	}
	if !bytes.Contains(src, []byte("writeOnly")) {
		return in
	}
	cat, err := e.catalogFor(r, nil)
	if err != nil {
		return WriteOnlyUnknown
	}
	return maskWith(cat, r.Workflow, in)
}

// WriteOnlyUnknown is shown in place of an input whose write-only fields
// could not be found (its definition did not load): all of it is hidden.
const WriteOnlyUnknown = "(input hidden: its definition could not be read)"

func maskWith(cat *definition.Catalog, workflow string, in any) any {
	if wf := cat.Workflow(workflow); wf != nil {
		return wf.MaskInput(in)
	}
	return in
}

// drive fields for masking, kept together here.
type driveMask struct {
	maskOnce sync.Once
	mask     *secrets.Masker
}

// toExecution is the package's toExecution with write-only input fields
// masked: what the engine gives callers, who print it.
func (e *Engine) toExecution(ctx context.Context, r *journal.Execution) (*Execution, error) {
	ex, err := toExecution(r)
	if err != nil {
		return nil, err
	}
	ex.Input = e.maskedInput(ctx, r, ex.Input)
	return ex, nil
}

// childInput is a child execution's input as journaled: a secret's value
// in it is masked like anywhere else (the child reads "***"; it calls
// secret() itself), while write-only values of the parent's input pass, as
// the parent's own input does, into a record the journal stores sealed.
func (e *Engine) childInput(in any) json.RawMessage {
	return e.sec.masker.JSON(encodeJSON(in))
}
