//go:build !unix

package cli_test

import (
	"errors"
	"os"
	"os/exec"
)

// The scripts' serve harness (TestScriptServer) runs on unix only: it
// signals and locks the way the service's own unix code does. These keep
// the package building elsewhere.

func detach(*exec.Cmd) {}

func lockDir(string) (func(), error) {
	return nil, errors.New("the scripts' serve harness runs on unix only")
}

func stopServe(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	return p.Kill()
}

func processLives(int) bool { return false }
