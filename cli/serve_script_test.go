package cli_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// freeport VAR: sets $VAR to a free loopback TCP port.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := l.Addr().(*net.TCPAddr).Port
	ts.Check(l.Close())
	ts.Setenv(args[0], fmt.Sprint(port))
}

// waitserver URL: waits until a loom serve answers URL/readyz with 200
// (it is starting in the background), for at most 30 s.
func cmdWaitServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitserver URL")
	}
	for range 300 {
		resp, err := http.Get(args[0] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.Fatalf("no server answered at %s", args[0])
}

// http METHOD URL [BODY] [HEADER:VALUE…]: sends a request like curl;
// stdout gets the body, stderr the status line. A status of 400 or more
// fails unless negated.
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: http METHOD URL [BODY] [HEADER:VALUE...]")
	}
	var body io.Reader
	var hdrs []string
	if len(args) > 2 {
		if !strings.Contains(args[2], ":") || strings.HasPrefix(strings.TrimSpace(args[2]), "{") {
			body = strings.NewReader(args[2])
			hdrs = args[3:]
		} else {
			hdrs = args[2:]
		}
	}
	req, err := http.NewRequest(args[0], args[1], body)
	ts.Check(err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range hdrs {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprint(ts.Stdout(), string(b))
	fmt.Fprintf(ts.Stderr(), "%d\n", resp.StatusCode)
	if failed := resp.StatusCode >= 400; failed != neg {
		ts.Fatalf("%s %s: status %d", args[0], args[1], resp.StatusCode)
	}
}
