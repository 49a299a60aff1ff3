package server

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/loomwork/loom/clock"
)

// Default request limits (SPEC §6 backpressure and security).
const (
	// DefaultRate is the requests per second each token (or each client
	// address, without tokens) may make; bursts reach twice it.
	DefaultRate = 100
	// DefaultMaxStreams caps the long polls and event streams open at
	// once in one process.
	DefaultMaxStreams = 10000
	// DefaultMaxBacklog is how many executions may wait for a worker
	// before starts are refused (--max-backlog).
	DefaultMaxBacklog = 100000
	// badAuthRate is how many failed authentications a client address may
	// make per second before every request from it is refused for a while:
	// guessing tokens must be slow.
	badAuthRate = 10
)

// limiter keeps a token bucket per key. It reads the server's clock, so
// that tests move time by hand.
type limiter struct {
	clk   clock.Clock
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(clk clock.Clock, perSecond float64, burst int) *limiter {
	return &limiter{clk: clk, rate: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}}
}

func (l *limiter) bucket(key string, now time.Time) *rate.Limiter {
	// Buckets idle for a minute are full again: forget them, so that
	// many clients seen once do not add up.
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.lim
}

// allow takes one request from key's bucket; when it is empty it returns
// false and the whole seconds until a request would be allowed.
func (l *limiter) allow(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clk.Now()
	lim := l.bucket(key, now)
	if lim.AllowN(now, 1) {
		return true, 0
	}
	return false, l.wait(lim, now)
}

// spent reports whether key's bucket is empty, without taking from it.
func (l *limiter) spent(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clk.Now()
	lim := l.bucket(key, now)
	if lim.TokensAt(now) >= 1 {
		return false, 0
	}
	return true, l.wait(lim, now)
}

// take takes one from key's bucket, even into debt.
func (l *limiter) take(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clk.Now()
	l.bucket(key, now).AllowN(now, 1)
}

func (l *limiter) wait(lim *rate.Limiter, now time.Time) int {
	missing := 1 - lim.TokensAt(now)
	return max(1, int(math.Ceil(missing/float64(l.rate))))
}

// clientAddr is the address a request came from: the connection's peer,
// or, when that peer is one of the configured proxies, the last address
// X-Forwarded-For names that is not a proxy itself.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.isProxy(host) {
		return host
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		if !s.isProxy(h) {
			return h
		}
		host = h
	}
	return host
}

func (s *Server) isProxy(host string) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range s.cfg.Proxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// FromProxy reports whether r came through one of Config.Proxies, whose
// X-Forwarded-* headers count.
func (s *Server) FromProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return s.isProxy(host)
}

// isStream reports whether a request holds its connection open: a long
// poll (?wait=) or an event stream.
func isStream(r *http.Request) bool {
	return r.URL.Query().Has("wait") || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// openStream counts a long poll or stream against MaxStreams; release is
// nil when the cap is reached.
func (s *Server) openStream() (release func()) {
	if n := s.streamsOpen.Add(1); n > int64(s.cfg.MaxStreams) {
		s.streamsOpen.Add(-1)
		return nil
	}
	return func() {
		s.streamsOpen.Add(-1)
		if s.testStreamClosed != nil {
			s.testStreamClosed()
		}
	}
}

func rateLimited(retry int, who string) *Error {
	e := apiErr(http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("%s is making more requests than this server allows; slow down", who))
	e.RetryAfter = retry
	return e
}

// cors answers for the origins Config.CORSOrigins lists: the headers on
// every answer, and a preflight OPTIONS request at once. No origin gets
// them otherwise (SPEC §6).
func (s *Server) cors(h http.Handler) http.Handler {
	if len(s.cfg.CORSOrigins) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := r.Header.Get("Origin")
		if o == "" || !slices.Contains(s.cfg.CORSOrigins, o) {
			h.ServeHTTP(w, r)
			return
		}
		hd := w.Header()
		hd.Add("Vary", "Origin")
		hd.Set("Access-Control-Allow-Origin", o)
		hd.Set("Access-Control-Expose-Headers", "Location, Retry-After, X-Request-Id")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hd.Set("Access-Control-Allow-Methods", "GET, POST")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-Id")
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// backlogRetry is the Retry-After of a start refused for the backlog: the
// backlog is read again every gaugeEvery.
const backlogRetry = gaugeEvery

// backlogFull refuses a start while more executions than MaxBacklog wait
// for a worker (SPEC §6 Backpressure). It reads the count the gauges
// read last, so a start costs no query; resumes and cancels never ask.
func (s *Server) backlogFull() error {
	if n := s.backlog.Load(); n > int64(s.cfg.MaxBacklog) {
		e := apiErr(http.StatusServiceUnavailable, "backlog_full",
			fmt.Sprintf("%d executions wait for a worker, more than this server's --max-backlog %d; nothing was started", n, s.cfg.MaxBacklog))
		e.RetryAfter = int(backlogRetry / time.Second)
		return e
	}
	return nil
}

// authLimiter is the server's count of failed authentications, shared
// with the console's sign-in form (console.Limiter): failed sign-ins and
// bad tokens are limited together, badAuthRate a second per client
// address (behind --behind-proxy, the address the proxy names).
type authLimiter struct{ s *Server }

func (a authLimiter) Spent(r *http.Request) (bool, int) {
	return a.s.badAuth.spent(a.s.clientAddr(r))
}

func (a authLimiter) Failed(r *http.Request) { a.s.badAuth.take(a.s.clientAddr(r)) }
