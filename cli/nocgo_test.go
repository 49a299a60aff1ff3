//go:build unix

package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBuiltWithoutCgo builds loom as Go does on a machine with no C
// compiler (CGO_ENABLED=0): it must build, validate still works, and a
// command that needs the SQLite journal says in one sentence what to
// install instead of go-sqlite3's stub error.
func TestBuiltWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds loom without cgo")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "loom")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/loomwork/loom/cmd/loom")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, b)
	}
	if err := os.WriteFile(filepath.Join(dir, "wf.yaml"), []byte("name: hello\nsteps:\n  - task: echo\n    with: hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runIn(t, dir, bin, "validate", "wf.yaml"); r.code != 0 {
		t.Errorf("validate without cgo: exit %d, stderr %q", r.code, r.stderr)
	}
	const want = "loom run: this loom was built without cgo (CGO_ENABLED=0, what Go does when it finds no C compiler), so it cannot open a SQLite journal; install a C compiler (apt install gcc, or xcode-select --install on macOS) and build it again with CGO_ENABLED=1, or pass --db postgres://…\n"
	r := runIn(t, dir, bin, "run", "wf.yaml")
	if r.code != 2 || r.stderr != want || r.stdout != "" {
		t.Errorf("run without cgo: exit %d, stdout %q, stderr\n%q\nwant exit 2 and\n%q", r.code, r.stdout, r.stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, ".loom")); err == nil {
		t.Error("run without cgo created .loom")
	}
}
