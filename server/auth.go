package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loomwork/loom/builtins"
)

// role is what a token may do; each role includes the ones before it.
type role int

const (
	roleNone    role = iota // health checks: no token
	roleRead                // every GET
	roleStart               // also start executions
	roleOperate             // also resume and cancel
)

var roleNames = map[string]role{"read": roleRead, "start": roleStart, "operate": roleOperate}

func (r role) String() string {
	for n, v := range roleNames {
		if v == r {
			return n
		}
	}
	return "none"
}

// Tokens is a token file (SPEC §6): lines `NAME ROLE SHA256-HEX`, `#`
// comments. It holds hashes only; a request's bearer token is hashed and
// compared with every entry in constant time.
type Tokens struct {
	path string
	mu   sync.RWMutex
	list []tokenEntry
	mod  time.Time
	size int64
}

type tokenEntry struct {
	name string
	role role
	hash [sha256.Size]byte
}

// LoadTokens reads a token file; a problem is an error naming file:line.
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload reads the file again. On error the tokens already loaded stay.
func (t *Tokens) Reload() error {
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("cannot read the token file: %v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read the token file: %v", err)
	}
	list, err := parseTokens(f, t.path)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.list, t.mod, t.size = list, info.ModTime(), info.Size()
	t.mu.Unlock()
	return nil
}

func parseTokens(r io.Reader, name string) ([]tokenEntry, error) {
	var list []tokenEntry
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want NAME ROLE SHA256-HEX, got %d fields", name, n, len(f))
		}
		ro, ok := roleNames[f[1]]
		if !ok {
			return nil, fmt.Errorf("%s:%d: unknown role %q (read, start or operate)", name, n, f[1])
		}
		h, err := hex.DecodeString(f[2])
		if err != nil || len(h) != sha256.Size || strings.ToLower(f[2]) != f[2] {
			return nil, fmt.Errorf("%s:%d: the hash must be 64 lowercase hex digits, as sha256sum prints it", name, n)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("%s:%d: token name %q appears twice", name, n, f[0])
		}
		seen[f[0]] = true
		e := tokenEntry{name: f[0], role: ro}
		copy(e.hash[:], h)
		list = append(list, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", name, err)
	}
	return list, nil
}

// lookup finds the entry of a bearer token. Every entry is compared, in
// constant time, whatever matches.
func (t *Tokens) lookup(token string) (tokenEntry, bool) {
	sum := sha256.Sum256([]byte(token))
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found tokenEntry
	hit := 0
	for _, e := range t.list {
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			found, hit = e, 1
		}
	}
	return found, hit == 1
}

// ByHash returns the name and role of the token whose SHA-256 is sha256hex
// (lowercase hex): how the console re-checks a signed-in session against
// the file on every request, so a removed token ends its sessions too.
func (t *Tokens) ByHash(sha256hex string) (name, roleName string, ok bool) {
	var sum [sha256.Size]byte
	if n, err := hex.Decode(sum[:], []byte(sha256hex)); err != nil || n != sha256.Size {
		return "", "", false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found tokenEntry
	hit := 0
	for _, e := range t.list {
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			found, hit = e, 1
		}
	}
	return found.name, found.role.String(), hit == 1
}

// Watch reloads the file when it changes (checked every 2 s, so a removed
// token stops working within 5 s) until ctx is done. A bad file keeps the
// old tokens and logs one error.
func (t *Tokens) Watch(ctx context.Context, log *slog.Logger) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		info, err := os.Stat(t.path)
		t.mu.RLock()
		same := err == nil && info.ModTime().Equal(t.mod) && info.Size() == t.size
		t.mu.RUnlock()
		if same {
			continue
		}
		if err := t.Reload(); err != nil {
			log.Error("token file not reloaded; the previous tokens stay", "error", err)
			// Do not log it again until the file changes once more.
			if info != nil {
				t.mu.Lock()
				t.mod, t.size = info.ModTime(), info.Size()
				t.mu.Unlock()
			}
			continue
		}
		log.Info("token file reloaded")
	}
}

// NewToken returns a new random 256-bit token and its token-file line.
func NewToken(name, roleName string) (token, line string, err error) {
	if _, ok := roleNames[roleName]; !ok {
		return "", "", fmt.Errorf("unknown role %q (read, start or operate)", roleName)
	}
	if name == "" || strings.ContainsAny(name, " \t#") {
		return "", "", fmt.Errorf("token name %q is not usable (no spaces or #)", name)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = "loom_" + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, name + " " + roleName + " " + hex.EncodeToString(sum[:]), nil
}

type ctxKey int

const (
	keyActor ctxKey = iota
	keyRequestID
)

// actor names who made the request: the token's name, or "local".
func actor(r *http.Request) string {
	if a, ok := r.Context().Value(keyActor).(*string); ok && *a != "" {
		return *a
	}
	return "local"
}

func requestID(r *http.Request) string {
	if id, ok := r.Context().Value(keyRequestID).(string); ok {
		return id
	}
	return ""
}

// guard authenticates a request for a route that needs role.
func (s *Server) guard(need role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if need == roleNone {
			h.ServeHTTP(w, r)
			return
		}
		addr := s.clientAddr(r)
		if spent, retry := s.badAuth.spent(addr); spent {
			writeError(w, r, rateLimited(retry, "this address has failed to authenticate too often; it"))
			return
		}
		if err := s.authorize(r, need); err != nil {
			if ae, ok := err.(*Error); ok && ae.Status == http.StatusUnauthorized {
				s.badAuth.take(addr)
			}
			writeError(w, r, err)
			return
		}
		if s.rates != nil {
			key, who := "addr "+addr, "this address ("+addr+")"
			if a, ok := r.Context().Value(keyActor).(*string); ok && *a != "" && s.cfg.Tokens != nil {
				key, who = "token "+*a, "token "+*a
			}
			if ok, retry := s.rates.allow(key); !ok {
				writeError(w, r, rateLimited(retry, who))
				return
			}
		}
		if isStream(r) {
			release := s.openStream()
			if release == nil {
				e := apiErr(http.StatusServiceUnavailable, "too_many_streams", fmt.Sprintf("this process has %d long polls and streams open, its limit; try again or another process", s.cfg.MaxStreams))
				e.RetryAfter = 1
				writeError(w, r, e)
				return
			}
			defer release()
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) authorize(r *http.Request, need role) error {
	if r.Method == http.MethodPost {
		if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(mt) != "application/json" {
			return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "a POST must carry Content-Type: application/json")
		}
	}
	if s.cfg.Tokens == nil {
		// Loopback only: a Host that is not loopback is DNS rebinding or
		// a misrouted request, and a cross-origin page must not start work.
		if !loopbackHost(r.Host) {
			return apiErr(http.StatusForbidden, "forbidden", "this server has no token file and answers only requests to localhost, 127.0.0.1 or [::1]")
		}
		if o := r.Header.Get("Origin"); o != "" && !slices.Contains(s.cfg.CORSOrigins, o) {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				return apiErr(http.StatusForbidden, "csrf", "a cross-origin request is refused")
			}
		}
		return nil
	}
	auth := r.Header.Get("Authorization")
	if auth == "" && s.cfg.Sessions != nil {
		// A browser signed in to the console: its session cookie stands
		// for the token, with the CSRF check on state-changing requests.
		id, ok, err := s.cfg.Sessions.Session(r)
		if err != nil {
			return apiErr(http.StatusForbidden, "csrf", err.Error())
		}
		if ok {
			if a, ok := r.Context().Value(keyActor).(*string); ok {
				*a = id.Name
			}
			if roleNames[id.Role] < need {
				return apiErr(http.StatusForbidden, "forbidden", fmt.Sprintf("token %s has role %s; this needs %s", id.Name, id.Role, need))
			}
			return nil
		}
	}
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		return apiErr(http.StatusUnauthorized, "unauthenticated", "send a token as Authorization: Bearer TOKEN")
	}
	e, ok := s.cfg.Tokens.lookup(strings.TrimSpace(tok))
	if !ok {
		return apiErr(http.StatusUnauthorized, "unauthenticated", "the token is not valid")
	}
	if a, ok := r.Context().Value(keyActor).(*string); ok {
		*a = e.name
	}
	if e.role < need {
		return apiErr(http.StatusForbidden, "forbidden", fmt.Sprintf("token %s has role %s; this needs %s", e.name, e.role, need))
	}
	return nil
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// statusWriter records the status a handler sent, for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and the deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged gives each request its id (the X-Request-Id it sent, or a new
// one), echoes it, and logs one line per request: method, route template,
// status, duration, token name, request id. Never a body or a token.
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = builtins.UUID4(builtins.CryptoRandom{})
		}
		w.Header().Set("X-Request-Id", id)
		who := ""
		ctx := context.WithValue(context.WithValue(r.Context(), keyRequestID, id), keyActor, &who)
		sw := &statusWriter{ResponseWriter: w}
		ctx, endSpan := s.tracing.httpSpan(r.WithContext(ctx))
		r = r.WithContext(ctx)
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("handler panicked", "panic", fmt.Sprint(p), "request_id", id)
				if sw.status == 0 {
					writeError(sw, r, apiErr(http.StatusInternalServerError, "internal", "the server failed on this request; it is logged under this request id"))
				}
			}
			s.metrics.observeHTTP(r.Pattern, sw.status, time.Since(start))
			endSpan(r, sw.status)
			s.log.Info("http", "method", r.Method, "route", r.Pattern, "status", sw.status,
				"duration", time.Since(start).Round(time.Microsecond).String(), "token", who, "request_id", id)
		}()
		h.ServeHTTP(sw, r)
	})
}
