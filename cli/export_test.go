package cli

// CheckLimits parses a --limits value as loom does, for the scripts'
// serve harness: it starts a serve with a command's limits only when the
// command itself would accept them.
func CheckLimits(text string) error {
	var l limits
	return parseLimits(&l, "--limits", text)
}
