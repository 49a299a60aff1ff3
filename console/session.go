package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// The names a browser and the server share.
const (
	// CookieName is the session cookie. It holds a random session id,
	// never the token.
	CookieName = "loom_session"
	// CSRFHeader carries the session's CSRF token on every state-changing
	// request made with the cookie.
	CSRFHeader = "X-Loom-CSRF"
)

// Session lifetimes (SPEC §7).
const (
	SessionMaxAge = 12 * time.Hour
	SessionIdle   = time.Hour
)

// signInRate is how many failed sign-ins a client address may make per
// second (SPEC §6, "Failed sign-ins and bad tokens are limited").
const signInRate = 10

// ErrCSRF is Session's answer to a state-changing request whose CSRF token
// or Origin is missing or wrong: the API answers 403 "csrf".
var ErrCSRF = errors.New("the request carries no valid X-Loom-CSRF header and same-origin Origin; reload the console and try again")

// Identity is who a signed-in browser acts for.
type Identity struct {
	Name string // the token's name: the actor journaled as started_by
	Role string // read, start or operate
}

type session struct {
	hash          string // SHA-256 of the token, to re-check it against the file
	csrf          string
	created, seen time.Time
}

type sessions struct {
	now func() time.Time

	mu       sync.Mutex
	byID     map[string]*session
	failures map[string]failures // by client address, without a Limiter
	limiter  Limiter             // LimitWith's; nil: failures
}

type failures struct {
	second time.Time
	n      int
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, byID: map[string]*session{}, failures: map[string]failures{}}
}

// Session returns the identity of a request made with the console's
// cookie: ok is false when it has no live session (the API answers 401).
// For any method but GET, HEAD and OPTIONS it also requires the session's
// CSRF token in X-Loom-CSRF and a same-origin Origin, else ErrCSRF. The
// role is read from the token file now, and a session whose token left the
// file, or that is older than 12 h or idle for 1 h, is over.
func (c *Console) Session(r *http.Request) (Identity, bool, error) {
	id, s, ok := c.lookup(r)
	if !ok {
		return Identity{}, false, nil
	}
	if !safeMethod(r.Method) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.csrf)) != 1 || !c.sameOrigin(r) {
			return Identity{}, true, ErrCSRF
		}
	}
	return id, true, nil
}

func (c *Console) lookup(r *http.Request) (Identity, session, bool) {
	if c.opts.Tokens == nil {
		return Identity{}, session{}, false
	}
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return Identity{}, session{}, false
	}
	ss := c.sessions
	now := ss.now()
	ss.mu.Lock()
	s := ss.byID[ck.Value]
	if s != nil && (now.Sub(s.created) >= SessionMaxAge || now.Sub(s.seen) >= SessionIdle) {
		delete(ss.byID, ck.Value)
		s = nil
	}
	var cp session
	if s != nil {
		s.seen = now
		cp = *s
	}
	ss.mu.Unlock()
	if s == nil {
		return Identity{}, session{}, false
	}
	name, role, ok := c.opts.Tokens.ByHash(cp.hash)
	if !ok {
		ss.mu.Lock()
		delete(ss.byID, ck.Value)
		ss.mu.Unlock()
		return Identity{}, session{}, false
	}
	return Identity{Name: name, Role: role}, cp, true
}

// whoami is GET /console/session: whether sign-in is on, who is signed in,
// with which role, and the CSRF token the page sends back.
func (c *Console) whoami(w http.ResponseWriter, r *http.Request) {
	if c.opts.Tokens == nil {
		writeJSON(w, http.StatusOK, sessionInfo{Auth: false, SignedIn: true, Name: "local", Role: "operate"})
		return
	}
	id, s, ok := c.lookup(r)
	if !ok {
		writeJSON(w, http.StatusOK, sessionInfo{Auth: true})
		return
	}
	writeJSON(w, http.StatusOK, c.info(id, s))
}

type sessionInfo struct {
	Auth      bool       `json:"auth"`
	SignedIn  bool       `json:"signed_in"`
	Name      string     `json:"name,omitempty"`
	Role      string     `json:"role,omitempty"`
	CSRF      string     `json:"csrf,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (c *Console) info(id Identity, s session) sessionInfo {
	exp := s.created.Add(SessionMaxAge).UTC()
	return sessionInfo{Auth: true, SignedIn: true, Name: id.Name, Role: id.Role, CSRF: s.csrf, ExpiresAt: &exp}
}

// signIn is POST /console/session {"token": "…"}: the token travels in the
// body only; the answer sets the session cookie.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if c.opts.Tokens == nil {
		writeError(w, http.StatusBadRequest, "bad_request", "sign-in is off: the server has no token file, so the console needs none")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "sign in with a JSON body {\"token\": \"…\"} and Content-Type: application/json")
		return
	}
	if !c.sameOrigin(r) {
		writeError(w, http.StatusForbidden, "csrf", "sign-in must come from the console's own page (same-origin Origin)")
		return
	}
	lim := c.sessions.limits()
	if spent, retry := lim.Spent(r); spent {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		writeError(w, http.StatusTooManyRequests, "rate_limited",
			fmt.Sprintf("too many failed sign-ins or bad tokens from this address; try again in %d s", retry))
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&body); err != nil || body.Token == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be {\"token\": \"…\"} with a token")
		return
	}
	sum := sha256.Sum256([]byte(body.Token))
	hash := hex.EncodeToString(sum[:])
	name, role, ok := c.opts.Tokens.ByHash(hash)
	if !ok {
		lim.Failed(r)
		writeError(w, http.StatusUnauthorized, "unauthenticated", "that token is not in the server's token file")
		return
	}
	now := c.sessions.now()
	s := &session{hash: hash, csrf: randomID(), created: now, seen: now}
	sid := randomID()
	c.sessions.put(sid, s)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sid, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.opts.HTTPS(r),
		MaxAge: int(SessionMaxAge / time.Second)})
	writeJSON(w, http.StatusOK, c.info(Identity{Name: name, Role: role}, *s))
}

// signOut is DELETE /console/session: the session ends here and now.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	_, ok, err := c.Session(r)
	if err != nil {
		writeError(w, http.StatusForbidden, "csrf", err.Error())
		return
	}
	if ok {
		ck, _ := r.Cookie(CookieName)
		c.sessions.mu.Lock()
		delete(c.sessions.byID, ck.Value)
		c.sessions.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.opts.HTTPS(r), MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (ss *sessions) put(id string, s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	// Sweep here, where sessions are made, so the map stays bounded by
	// the sessions live in the last 12 h.
	for k, o := range ss.byID {
		if s.created.Sub(o.created) >= SessionMaxAge || s.created.Sub(o.seen) >= SessionIdle {
			delete(ss.byID, k)
		}
	}
	ss.byID[id] = s
}

// LimitWith makes failed sign-ins count against l, which the server's
// bad tokens count against too, instead of the console's own count.
func (c *Console) LimitWith(l Limiter) {
	c.sessions.mu.Lock()
	c.sessions.limiter = l
	c.sessions.mu.Unlock()
}

// limits is the limiter sign-ins count against: LimitWith's, or the
// console's own count of failed sign-ins per client address.
func (ss *sessions) limits() Limiter {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.limiter != nil {
		return ss.limiter
	}
	return ownLimiter{ss}
}

// ownLimiter counts failed sign-ins per client address, signInRate a
// second, when the console serves without a server's Limiter.
type ownLimiter struct{ ss *sessions }

func (l ownLimiter) Spent(r *http.Request) (bool, int) {
	ss := l.ss
	now := ss.now().Truncate(time.Second)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := ss.failures[clientAddr(r)]
	return f.second.Equal(now) && f.n >= signInRate, 1
}

func (l ownLimiter) Failed(r *http.Request) {
	ss, addr := l.ss, clientAddr(r)
	now := ss.now().Truncate(time.Second)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.failures) > 10000 {
		clear(ss.failures) // a flood of addresses must not grow memory
	}
	f := ss.failures[addr]
	if !f.second.Equal(now) {
		f = failures{second: now}
	}
	f.n++
	ss.failures[addr] = f
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether the request's Origin is the console's own:
// the host it was sent to, over the scheme it arrived on.
func (c *Console) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || u.Host != r.Host {
		return false
	}
	return (u.Scheme == "https") == c.opts.HTTPS(r)
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
