// Package sealed encrypts what an execution's journal holds, for teams
// whose data must not sit in clear on disk. Wrap puts it around any
// journal.Journal (SQLite, PostgreSQL, memory): every payload — an
// execution's input, output and error, and every event's data (task
// results and errors, resume payloads, builtin values) — is sealed with
// AES-256-GCM before the backend sees it and opened when it is read.
//
// A sealed document is itself JSON, {"$loom_sealed": 1, "key": ID, "data":
// BASE64}, so every backend stores it unchanged; the key id is stored with
// each record, so a key file that lists old keys after the current one still
// reads what they sealed (rotation). The additional data binds each
// ciphertext to its execution and its place (input, output, error, or the
// event's kind, path and ordinal): a sealed value moved elsewhere does not
// open.
//
// What stays in clear: ids, workflow names, states, times, labels, paths,
// event kinds and names, open pauses (names, paths and schemas, which are
// the definition's), and the pinned definition. It imports only journal.
//
// A method added to journal.Journal that carries a payload in or out must
// be added here too; the embedded journal forwards the others unchanged.
package sealed
