package sealed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/loomwork/loom/journal"
)

// prefix starts every sealed document: as seal writes it, and as a backend
// that stores JSON re-encoded with sorted keys gives it back ('$' sorts
// first).
const prefix = `{"$loom_sealed":1,`

type envelope struct {
	V    int    `json:"$loom_sealed"`
	Key  string `json:"key"`
	Data string `json:"data"`
}

// IsSealed reports whether raw is a sealed document, and with which key.
func IsSealed(raw []byte) (keyID string, ok bool) {
	if !bytes.HasPrefix(raw, []byte(prefix)) {
		return "", false
	}
	var e envelope
	if json.Unmarshal(raw, &e) != nil || e.V != 1 {
		return "", false
	}
	return e.Key, true
}

// KeyError is a sealed value that cannot be opened: no key file was given,
// or it does not hold the key the value was sealed with.
type KeyError struct {
	ExecutionID string
	Key         string
	NoKeys      bool // no key file at all
}

func (e *KeyError) Error() string {
	if e.NoKeys {
		return fmt.Sprintf("the journal of %s is encrypted (key %s): give its key file with --key-file or $LOOM_KEY_FILE", e.ExecutionID, e.Key)
	}
	return fmt.Sprintf("the journal of %s is encrypted with key %s, which the key file does not hold: add that key's line to the key file", e.ExecutionID, e.Key)
}

// ErrTampered: a sealed value does not open with its key: it was changed
// or moved from another record.
var ErrTampered = errors.New("a sealed value of the journal does not open: it was altered or moved")

// Journal is a journal.Journal that seals payloads on their way in and
// opens them on their way out.
type Journal struct {
	journal.Journal
	keys   *Keys
	opaque bool

	mu     sync.Mutex
	hidden map[string]bool // key ids of values a View could not open
}

func (s *Journal) hide(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hidden == nil {
		s.hidden = map[string]bool{}
	}
	s.hidden[key] = true
}

// Hidden lists, sorted, the key ids of values a View read as Opaque
// because it lacks their key.
func (s *Journal) Hidden() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.hidden))
	for k := range s.hidden {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	return ids
}

// Wrap returns j sealing every payload with keys' current key. With nil
// keys nothing new is sealed, and reading a sealed value fails with a
// *KeyError: an engine must never run on values it cannot read.
func Wrap(j journal.Journal, keys *Keys) *Journal {
	return &Journal{Journal: j, keys: keys}
}

// View is Wrap for reading only: a value it cannot open (no key, or not
// this key) reads as Opaque's text, "(encrypted with key ID)", instead of
// failing, so status and show can print what is in clear; Hidden then
// names the keys it lacked.
func View(j journal.Journal, keys *Keys) *Journal {
	return &Journal{Journal: j, keys: keys, opaque: true}
}

// Unwrap returns the journal s seals, for what it offers beyond
// journal.Journal (journal.HintsOf).
func (s *Journal) Unwrap() journal.Journal { return s.Journal }

// Encrypting reports whether new payloads are sealed.
func (s *Journal) Encrypting() bool { return s.keys != nil }

// Opaque is the text View reads in place of a value sealed with key id.
func Opaque(id string) string { return "(encrypted with key " + id + ")" }

// opaque is what View reads for a document sealed with key id, shaped as
// the document would be so that a reader finds its fields: a record's
// error is an error object, an event's data carries its kind's value field.
func opaque(field string, kind journal.EventKind, id string) json.RawMessage {
	text := Opaque(id)
	var v any = text
	switch {
	case field == "error":
		v = map[string]any{"type": "Encrypted", "message": text}
	case field != "event":
	case kind == journal.StepFailed:
		v = map[string]any{"error": map[string]any{"type": "Encrypted", "message": text}}
	case kind == journal.Builtin:
		v = map[string]any{"value": text}
	default:
		v = map[string]any{"output": text}
	}
	b, _ := json.Marshal(v)
	return b
}

func recordAD(id, field string) []byte {
	return []byte("loom/1\x00" + id + "\x00" + field)
}

func eventAD(id string, ev *journal.Event) []byte {
	return []byte("loom/1\x00" + id + "\x00event\x00" + string(ev.Kind) + "\x00" + ev.Path + "\x00" + strconv.Itoa(ev.Ordinal))
}

func (s *Journal) seal(raw json.RawMessage, ad []byte) (json.RawMessage, error) {
	if s.keys == nil || len(raw) == 0 {
		return raw, nil
	}
	aead := s.keys.aead[s.keys.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(raw)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("cannot seal: %w", err)
	}
	ct := aead.Seal(nonce, nonce, raw, ad)
	return json.Marshal(envelope{V: 1, Key: s.keys.current, Data: base64.StdEncoding.EncodeToString(ct)})
}

// open returns the clear document raw seals (raw itself when it is not
// sealed); field and kind shape what a View reads without the key.
func (s *Journal) open(id string, raw json.RawMessage, ad []byte, field string, kind journal.EventKind) (json.RawMessage, error) {
	key, ok := IsSealed(raw)
	if !ok {
		return raw, nil // written in clear (before a key was configured)
	}
	var aead interface {
		NonceSize() int
		Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	}
	if s.keys != nil {
		if a, ok := s.keys.aead[key]; ok {
			aead = a
		}
	}
	if aead == nil {
		if s.opaque {
			s.hide(key)
			return opaque(field, kind, key), nil
		}
		return nil, &KeyError{ExecutionID: id, Key: key, NoKeys: s.keys == nil}
	}
	var e envelope
	_ = json.Unmarshal(raw, &e) // IsSealed decoded it
	ct, err := base64.StdEncoding.DecodeString(e.Data)
	if err != nil || len(ct) < aead.NonceSize() {
		return nil, fmt.Errorf("execution %s: %w", id, ErrTampered)
	}
	pt, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], ad)
	if err != nil {
		return nil, fmt.Errorf("execution %s: %w", id, ErrTampered)
	}
	return pt, nil
}

func (s *Journal) sealRecord(e *journal.Execution) (*journal.Execution, error) {
	if s.keys == nil {
		return e, nil
	}
	if err := e.Validate(); err != nil {
		return nil, err // what the backend would say of the clear record
	}
	c := *e
	var err error
	for _, f := range []struct {
		name string
		v    *json.RawMessage
	}{{"input", &c.Input}, {"output", &c.Output}, {"error", &c.Error}} {
		if *f.v, err = s.seal(*f.v, recordAD(c.ID, f.name)); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

func (s *Journal) openRecord(e *journal.Execution) error {
	var err error
	for _, f := range []struct {
		name string
		v    *json.RawMessage
	}{{"input", &e.Input}, {"output", &e.Output}, {"error", &e.Error}} {
		if *f.v, err = s.open(e.ID, *f.v, recordAD(e.ID, f.name), f.name, ""); err != nil {
			return err
		}
	}
	return nil
}

// Create seals the record's payloads.
func (s *Journal) Create(ctx context.Context, e *journal.Execution) error {
	c, err := s.sealRecord(e)
	if err != nil {
		return err
	}
	return s.Journal.Create(ctx, c)
}

// CreateHeld seals the record's payloads.
func (s *Journal) CreateHeld(ctx context.Context, e *journal.Execution, h journal.Holder, ttl time.Duration) (journal.Lease, error) {
	c, err := s.sealRecord(e)
	if err != nil {
		return journal.Lease{}, err
	}
	return s.Journal.CreateHeld(ctx, c, h, ttl)
}

// ClaimSlot seals the payloads of the execution the slot starts.
func (s *Journal) ClaimSlot(ctx context.Context, slot journal.ScheduleSlot, e *journal.Execution) (bool, error) {
	if e == nil {
		return s.Journal.ClaimSlot(ctx, slot, nil)
	}
	c, err := s.sealRecord(e)
	if err != nil {
		return false, err
	}
	return s.Journal.ClaimSlot(ctx, slot, c)
}

// Append seals the events' data and the update's output and error.
func (s *Journal) Append(ctx context.Context, a journal.Append) (int64, error) {
	if s.keys == nil {
		return s.Journal.Append(ctx, a)
	}
	if err := a.Validate(); err != nil {
		return 0, err // what the backend would say of the clear append
	}
	evs := make([]journal.Event, len(a.Events))
	for i, ev := range a.Events {
		d, err := s.seal(ev.Data, eventAD(a.ExecutionID, &ev))
		if err != nil {
			return 0, err
		}
		ev.Data = d
		evs[i] = ev
	}
	a.Events = evs
	if a.Update != nil {
		u := *a.Update
		var err error
		if u.Output, err = s.seal(u.Output, recordAD(a.ExecutionID, "output")); err != nil {
			return 0, err
		}
		if u.Error, err = s.seal(u.Error, recordAD(a.ExecutionID, "error")); err != nil {
			return 0, err
		}
		a.Update = &u
	}
	return s.Journal.Append(ctx, a)
}

// Events opens each event's data.
func (s *Journal) Events(ctx context.Context, id string, after int64) ([]journal.Event, error) {
	evs, err := s.Journal.Events(ctx, id, after)
	for i := range evs {
		var oerr error
		if evs[i].Data, oerr = s.open(id, evs[i].Data, eventAD(id, &evs[i]), "event", evs[i].Kind); oerr != nil {
			return nil, oerr
		}
	}
	return evs, err
}

// Get opens the record's payloads.
func (s *Journal) Get(ctx context.Context, id string) (*journal.Execution, error) {
	e, err := s.Journal.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.openRecord(e); err != nil {
		return nil, err
	}
	return e, nil
}

// List opens every record's payloads.
func (s *Journal) List(ctx context.Context, f journal.Filter) ([]*journal.Execution, error) {
	// A damaged journal lists what it can read with an error naming the
	// rest: both pass through.
	es, err := s.Journal.List(ctx, f)
	for _, e := range es {
		if oerr := s.openRecord(e); oerr != nil {
			return nil, oerr
		}
	}
	return es, err
}

// RequestCancel opens the returned record's payloads.
func (s *Journal) RequestCancel(ctx context.Context, id, by string) (*journal.Execution, error) {
	e, err := s.Journal.RequestCancel(ctx, id, by)
	if err != nil || e == nil {
		return e, err
	}
	if err := s.openRecord(e); err != nil {
		return nil, err
	}
	return e, nil
}
