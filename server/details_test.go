package server

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestSchemaErrorDetails: a refused input or payload is 400 with the
// engine's sentence and, in details, each failing part at its JSON
// pointer, a missing required property at the property; the whole
// rendered answer is checked against testdata/errors/*.json.
func TestSchemaErrorDetails(t *testing.T) {
	h := newHarness(t)
	st, _, rec := h.do("POST", "/v1/executions?wait=60s", `{"workflow": "review", "id": "r1", "input": {"title": "ok!", "owner": {"name": "ann", "a/b": 1}}}`)
	if st != 201 || rec["state"] != "PAUSED" {
		t.Fatalf("start: %d %v", st, rec)
	}
	for _, tc := range []struct{ name, method, path, body string }{
		{"invalid_input", "POST", "/v1/executions", `{"workflow": "review", "input": {"title": "no", "owner": {}}}`},
		{"invalid_payload", "POST", "/v1/executions/r1/resume", `{"payload": {"reason": "ok", "amount": -1, "tags": ["a", 2]}}`},
		{"invalid_payload_not_object", "POST", "/v1/executions/r1/resume", `{"payload": "yes"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, body := h.raw(tc.method, tc.path, tc.body, "X-Request-Id", "req-"+tc.name)
			got := append([]byte(strconv.Itoa(st)+" "+http.StatusText(st)+"\n"), body...)
			file := filepath.Join("testdata", "errors", tc.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s %s answered\n%s\nwant (%s)\n%s", tc.method, tc.path, got, file, want)
			}
		})
	}
}
