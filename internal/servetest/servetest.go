package servetest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	loomBin   string
	buildErr  error
)

// Loom builds cmd/loom once for this test binary and returns its path.
func Loom(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loom-servetest-")
		if err != nil {
			buildErr = err
			return
		}
		loomBin = filepath.Join(dir, "loom")
		if out, err := exec.Command("go", "build", "-o", loomBin, "github.com/loomwork/loom/cmd/loom").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return loomBin
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Proc is one running loom serve.
type Proc struct {
	Cmd  *exec.Cmd
	URL  string        // http://127.0.0.1:PORT
	Log  string        // its stdout and stderr
	Done chan struct{} // closed once it has exited
}

// Start runs `loom serve ARGS… --listen 127.0.0.1:PORT` with env added to
// this process's environment, its output in a new file under logDir, and
// returns once it answers /readyz with 200 (it fails tb if it exits or is
// not ready within 60 s). The caller stops it (Stop, or a signal).
func Start(tb testing.TB, loom, logDir string, port int, env []string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Done: make(chan struct{})}
	f, err := os.CreateTemp(logDir, "serve-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	p.Log = f.Name()
	p.Cmd = exec.Command(loom, append(append([]string{"serve"}, args...), "--listen", fmt.Sprintf("127.0.0.1:%d", port))...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = f, f
	if err := p.Cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.Cmd.Wait(); f.Close(); close(p.Done) }()
	for range 600 {
		select {
		case <-p.Done:
			b, _ := os.ReadFile(p.Log)
			tb.Fatalf("loom serve exited at start:\n%s", b)
		default:
		}
		if resp, err := http.Get(p.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Cmd.Process.Kill()
	b, _ := os.ReadFile(p.Log)
	tb.Fatalf("loom serve did not become ready in 60 s:\n%s", b)
	return nil
}

// Stop drains the process (SIGINT) and waits until it has exited.
func (p *Proc) Stop() {
	p.Cmd.Process.Signal(os.Interrupt)
	<-p.Done
}

// RSS is the process's resident set size in bytes, from /proc (Linux).
func (p *Proc) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", p.Cmd.Process.Pid)
}
