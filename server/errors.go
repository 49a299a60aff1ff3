package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
)

// Error is an API error (SPEC §6): an HTTP status, a stable code, one
// sentence, and optional details.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
	// RetryAfter, in seconds, is sent as the Retry-After header.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func apiErr(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// payloadError marks an ErrInvalidInput refusal as the resume payload's,
// so that it maps to invalid_payload rather than invalid_input.
type payloadError struct{ err error }

func (e *payloadError) Error() string { return e.err.Error() }
func (e *payloadError) Unwrap() error { return e.err }

// errorOf is the one place that maps what went wrong to SPEC §6's status
// and code, as cli/exit.go maps it to an exit status.
func errorOf(err error) *Error {
	var ae *Error
	var mb *http.MaxBytesError
	var pe *payloadError
	var nr *journal.NotRootError
	var rp *interpreter.RerunPathError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mb):
		return apiErr(http.StatusRequestEntityTooLarge, "limit_exceeded", "the request body is larger than this server's limit of "+byteSize(mb.Limit))
	case errors.As(err, &pe) && errors.Is(err, interpreter.ErrInvalidInput):
		return withSchemaDetails(apiErr(http.StatusBadRequest, "invalid_payload", err.Error()), err)
	case errors.Is(err, interpreter.ErrInvalidInput):
		return withSchemaDetails(apiErr(http.StatusBadRequest, "invalid_input", err.Error()), err)
	case errors.Is(err, interpreter.ErrNotFound), errors.Is(err, journal.ErrNotFound):
		return apiErr(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, interpreter.ErrPauseTimedOut):
		return apiErr(http.StatusConflict, "pause_timed_out", err.Error())
	case errors.Is(err, interpreter.ErrNotPaused):
		return apiErr(http.StatusConflict, "not_paused", err.Error())
	case errors.Is(err, journal.ErrBusy), errors.Is(err, journal.ErrFenced):
		msg := "another runner holds the execution; try again"
		var be *journal.BusyError
		if errors.As(err, &be) {
			msg = be.Error() // who holds it, and until when (as waiting_on says)
		}
		e := apiErr(http.StatusConflict, "busy", msg)
		e.RetryAfter = 1
		return e
	case errors.As(err, &rp):
		return apiErr(http.StatusBadRequest, "invalid_from", err.Error())
	case errors.Is(err, interpreter.ErrNotRerunnable):
		return apiErr(http.StatusConflict, "not_rerunnable", err.Error())
	case errors.Is(err, interpreter.ErrFinished):
		return apiErr(http.StatusConflict, "finished", err.Error())
	case errors.As(err, &nr):
		e := apiErr(http.StatusConflict, "not_root", nr.Error())
		e.Details = map[string]string{"root_id": nr.RootID}
		return e
	case errors.Is(err, journal.ErrExists):
		return apiErr(http.StatusConflict, "execution_exists", err.Error())
	case errors.Is(err, interpreter.ErrNonDeterminism):
		return apiErr(http.StatusConflict, "non_determinism", err.Error())
	case errors.Is(err, journal.ErrDamaged):
		return apiErr(http.StatusInternalServerError, "journal_damaged", err.Error()+"; `loom doctor` says what can be recovered")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e := apiErr(http.StatusServiceUnavailable, "journal_unavailable", "the request was cut short before the journal answered")
		e.RetryAfter = 1
		return e
	}
	// What is left comes from the journal: the database is down, the disk
	// is full. The execution is intact; the client tries again.
	e := apiErr(http.StatusServiceUnavailable, "journal_unavailable", "the journal is unavailable: "+err.Error())
	e.RetryAfter = 5
	return e
}

// withSchemaDetails gives e the details of a schema's refusal, [{location,
// message}] (SPEC §6), when err is one; a refusal that is not the
// schema's (a payload that is not JSON) has none.
func withSchemaDetails(e *Error, err error) *Error {
	var se *interpreter.SchemaError
	if errors.As(err, &se) {
		e.Details = se.Details
	}
	return e
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa64(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa64(n>>10) + " KiB"
	}
	return itoa64(n) + " bytes"
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// writeError sends err as SPEC §6's JSON error.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := errorOf(err)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", itoa64(int64(e.RetryAfter)))
	}
	body := map[string]any{"code": e.Code, "message": e.Message, "request_id": requestID(r)}
	if e.Details != nil {
		body["details"] = e.Details
	}
	writeJSON(w, e.Status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
