package console

import (
	"embed"
	"io/fs"
	"net/http"
	"time"
)

//go:embed assets
var assets embed.FS

// Options configure a Console.
type Options struct {
	// Tokens resolves signed-in tokens. Nil means no token file: every
	// page says "no authentication" and the person acts as "local" with
	// every role, as the API allows on loopback.
	Tokens Tokens
	// Now is the clock sessions expire by (default time.Now).
	Now func() time.Time
	// HTTPS reports whether a request reached the server over HTTPS: TLS
	// here, or at a proxy the server trusts (--behind-proxy). It decides
	// the cookie's Secure flag and the scheme of the same-origin check.
	// Default: r.TLS != nil.
	HTTPS func(r *http.Request) bool
}

// Limiter counts failed authentications per client, so that failed
// sign-ins and bad API tokens share one budget (SPEC §6: 10 per second per
// client address). The server gives the console its own (server.New calls
// LimitWith); without one the console counts failed sign-ins alone.
type Limiter interface {
	// Spent reports whether r's client may not try now, and how many
	// whole seconds until it may.
	Spent(r *http.Request) (spent bool, retryAfter int)
	// Failed counts a failed authentication of r's client.
	Failed(r *http.Request)
}

// Tokens is the server's token file as the console needs it: a token's name
// and role by the token's SHA-256 (lowercase hex, as the file holds it).
// It is asked on every request, so a token removed from the file ends its
// sessions at once.
type Tokens interface {
	ByHash(sha256hex string) (name, role string, ok bool)
}

// Console serves the pages and the sign-in sessions.
type Console struct {
	opts     Options
	sessions *sessions
	mux      *http.ServeMux
}

// New returns a Console.
func New(o Options) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPS == nil {
		o.HTTPS = func(r *http.Request) bool { return r.TLS != nil }
	}
	c := &Console{opts: o, sessions: newSessions(o.Now)}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, static, "index.html")
	}
	m := http.NewServeMux()
	for _, p := range []string{"GET /{$}", "GET /pauses", "GET /executions/{id}", "GET /workflows", "GET /workflows/{name}"} {
		m.HandleFunc(p, page)
	}
	files := http.FileServerFS(static)
	m.Handle("GET /assets/", http.StripPrefix("/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path == "index.html" || r.URL.Path[len(r.URL.Path)-1] == '/' {
			http.NotFound(w, r) // no directory listings, no second address for the page
			return
		}
		// The binary's version is the assets' version: revalidate, so an
		// upgrade never mixes old and new modules.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	m.HandleFunc("GET /console/session", c.whoami)
	m.HandleFunc("POST /console/session", c.signIn)
	m.HandleFunc("DELETE /console/session", c.signOut)
	c.mux = m
	return c
}

// Handler serves the console's pages (/, /pauses, /executions/{id},
// /workflows, /workflows/{name}), its assets (/assets/…) and
// /console/session. Mount it at "/" and "/console/" beside /v1.
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SecurityHeaders(w.Header())
		c.mux.ServeHTTP(w, r)
	})
}

// SecurityHeaders sets the headers every console answer carries (SPEC §7):
// no script, style or frame from anywhere but this origin, no inline
// script, no sniffing, no referrer.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}
