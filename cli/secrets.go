package cli

import (
	"errors"
	"fmt"

	"github.com/loomwork/loom/definition"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/secrets"
)

// flagSecretsDir adds a directory of secret files to where secret("NAME")
// reads; the environment ($LOOM_SECRET_NAME) is always read first.
var flagSecretsDir = flagSpec{"secrets-dir", "DIR", "read secret(\"name\") also from the files of DIR, as Kubernetes or Docker mount secrets (default $LOOM_SECRETS_DIR); $LOOM_SECRET_NAME comes first"}

// flagCheckSecrets makes validate check secret names against the secrets
// this environment has, as run always does.
var flagCheckSecrets = flagSpec{"check-secrets", "", "report secret(\"name\") names that neither $LOOM_SECRET_NAME nor --secrets-dir provides"}

// secretCommands evaluate expressions, so they read secrets.
var secretCommands = map[string]bool{"validate": true, "run": true, "resume": true, "replay": true, "cancel": true, "serve": true, "check": true}

func init() {
	for _, c := range commands {
		if secretCommands[c.name] {
			c.flags = insertFlag(c.flags, len(c.flags), flagSecretsDir)
		}
		if c.name == "validate" {
			c.flags = insertFlag(c.flags, len(c.flags), flagCheckSecrets)
		}
	}
}

// secretOptions are the engine options of secrets: where secret() reads,
// and whether the journal encrypts (a key file is given).
func (a *app) secretOptions() []interpreter.Option {
	opts := []interpreter.Option{interpreter.WithSecrets(a.secretProvider())}
	if a.keyFile() != "" {
		opts = append(opts, interpreter.WithEncryption())
	}
	return opts
}

// secretsDir is --secrets-dir, else $LOOM_SECRETS_DIR.
func (a *app) secretsDir() string {
	if a.p.has("secrets-dir") {
		return a.p.get("secrets-dir")
	}
	return a.getenv("LOOM_SECRETS_DIR")
}

// secretProvider is where secret("NAME") reads: $LOOM_SECRET_NAME, then a
// file of the secrets directory when one is given.
func (a *app) secretProvider() secrets.Provider {
	if dir := a.secretsDir(); dir != "" {
		return secrets.Chain{secrets.Env{}, secrets.Dir{Path: dir}}
	}
	return secrets.Env{}
}

// secretCheck is the load option that reports unknown secret names for
// validate --check-secrets: the secrets of production are seldom where
// definitions are validated, so it is not the default.
func (a *app) secretCheck() []definition.Option {
	if a.cmd != nil && a.cmd.name == "validate" && a.p.has("check-secrets") {
		return []definition.Option{definition.WithSecrets(a.secretProvider())}
	}
	return nil
}

// checkRunSecrets refuses, before anything starts, a run of workflow name
// whose literal secret names (its own and those of the workflows it can
// start) are not all provided, each reported at its position.
func (a *app) checkRunSecrets(cat *definition.Catalog, name, path string) error {
	err := cat.CheckSecrets(name, a.secretProvider())
	if err == nil {
		return nil
	}
	var list definition.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(a.stderr, e.Error())
		}
		return &problemsError{n: len(list), path: path}
	}
	return err
}
