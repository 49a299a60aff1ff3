//go:build !linux

package interpreter

// localNodeOf is unknown outside Linux: there is no portable name for a
// boot and a PID namespace, and a hostname alone is not enough (jails and
// containers share them). Leases of dead runners then wait for their
// expiry.
func localNodeOf() string { return "" }
