//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package cli

func isatty(fd uintptr) bool { return false }
