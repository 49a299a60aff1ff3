// Package secrets resolves the values of `secret("name")` in workflow
// expressions and masks them wherever the engine journals or prints a
// string. It imports no Loom package.
//
// A Provider looks a secret up by name: Env reads $LOOM_SECRET_NAME, Dir a
// directory of files as Kubernetes and Docker mount secrets, Chain asks
// several in order; any other store (Vault, a cloud secret manager) plugs in
// by implementing Provider. A provider that can also list its names
// (Lister) lets validation report an unknown secret name before anything
// runs.
//
// A Masker holds the values resolved so far and replaces each occurrence in
// a string or a JSON document with "***", as GitHub Actions masks secrets
// in its logs.
package secrets
