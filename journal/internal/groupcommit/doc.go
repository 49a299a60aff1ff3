// Package groupcommit is the write queue both SQL journal backends share:
// callers queue writes and wait, one writer goroutine commits as many as
// are waiting in one transaction, and each caller hears back only after the
// commit that holds its write. What a transaction is stays the backend's.
package groupcommit
