package sealed

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// keyIDRE is what a key id may be: short, printable, no spaces.
var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// Keys are the keys of a key file: the first seals, every one opens.
type Keys struct {
	current string
	aead    map[string]cipher.AEAD
}

// Current is the id of the key that seals.
func (k *Keys) Current() string { return k.current }

// LoadKeys reads a key file (see ParseKeys).
func LoadKeys(path string) (*Keys, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the key file: %w", err)
	}
	keys, err := ParseKeys(src)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return keys, nil
}

// ParseKeys reads a key file: one key a line, "ID BASE64" where BASE64 is
// 32 random bytes (AES-256) in standard base64; '#' starts a comment. The
// first key seals new records; the others only open old ones, so a key is
// rotated by putting a new line first and keeping the old one until nothing
// sealed with it remains. Errors start with the line number.
func ParseKeys(src []byte) (*Keys, error) {
	k := &Keys{aead: map[string]cipher.AEAD{}}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("%d: a key line is \"ID BASE64-KEY\" (make one with `loom key new`)", n)
		}
		id := f[0]
		if !keyIDRE.MatchString(id) {
			return nil, fmt.Errorf("%d: key id %q must be 1 to 64 letters, digits or _.:-", n, id)
		}
		if _, dup := k.aead[id]; dup {
			return nil, fmt.Errorf("%d: key id %q appears twice", n, id)
		}
		raw, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%d: key %q is not 32 bytes in base64 (make one with `loom key new`)", n, id)
		}
		block, _ := aes.NewCipher(raw) // 32 bytes is always a valid AES key
		aead, _ := cipher.NewGCM(block)
		k.aead[id] = aead
		if k.current == "" {
			k.current = id
		}
	}
	if k.current == "" {
		return nil, fmt.Errorf("1: the key file holds no key (make one with `loom key new`)")
	}
	return k, nil
}

// NewKeyLine returns a key file line for a new random key; id "" gets a
// random one.
func NewKeyLine(rnd io.Reader, id string) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [32 + 4]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", err
	}
	if id == "" {
		id = "k" + hex.EncodeToString(b[32:])
	}
	if !keyIDRE.MatchString(id) {
		return "", fmt.Errorf("key id %q must be 1 to 64 letters, digits or _.:-", id)
	}
	return id + " " + base64.StdEncoding.EncodeToString(b[:32]), nil
}
