package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loomwork/loom/console"
	"github.com/loomwork/loom/duration"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/server"
)

// serveCommand is `loom serve` (SPEC §6): the service, in any binary made
// with cli.Main(reg).
var serveCommand = &command{name: "serve",
	usage:   "serve CATALOG_PATH [--db DSN] [--listen ADDR] [--concurrency N] [--tokens FILE] [--tls-cert F --tls-key F | --behind-proxy CIDR,…] [--drain D] [--max-body SIZE] [--max-wait D] [--max-streams N] [--max-backlog N] [--rate N] [--db-conns N] [--cors-origin ORIGIN,…] [--retention D] [--limits NAME=N,…] [--log-format text|json]",
	minArgs: 1, maxArgs: 1,
	summary: "run the service: the HTTP API and workers that keep executions moving",
	help: `Serves the HTTP API of SPEC §6 over the catalog at CATALOG_PATH and the
journal (--db, else $LOOM_DB), and drives executions with nobody at a
terminal: starts, resumes, cancels, due timers and executions whose runner
died. Several processes on one PostgreSQL journal share the work.

It listens on 127.0.0.1:8080 unless --listen. A non-loopback address needs
--tokens and either --tls-cert/--tls-key or --behind-proxy. The first
SIGTERM or SIGINT drains: /readyz answers 503, nothing new is claimed, and
drives in flight get --drain to finish before they are cut short and their
leases released; a second signal exits at once. SIGHUP reloads --tokens.
--retention D deletes finished executions (with their children and events)
D after they finished, in small batches, as loom prune does. --limits (or
$LOOM_LIMITS) sets the limits of every execution the process drives and
of the inputs and payloads it accepts, as loom run's does.

Exit status: 0 after a drain, 2 refused at start (catalog, flags, token
file, address), 5 the journal is unavailable.`,
	flags: []flagSpec{
		{"listen", "ADDR", "the address to serve on (default 127.0.0.1:8080)"},
		{"concurrency", "N", "execution trees this process drives at once (default 64)"},
		{"tokens", "FILE", "the token file (NAME ROLE SHA256 lines); without it only loopback is served"},
		{"tls-cert", "FILE", "serve TLS with this certificate"},
		{"tls-key", "FILE", "and this key"},
		{"behind-proxy", "CIDR,…", "TLS ends at a proxy at these addresses"},
		{"drain", "D", "how long drives in flight may finish after SIGTERM (default 25s)"},
		{"max-body", "SIZE", "the largest request body (default 4MiB)"},
		{"max-wait", "D", "the longest long poll (default 60s)"},
		{"max-streams", "N", "long polls and event streams open at once (default 10000); beyond it 503 too_many_streams"},
		{"max-backlog", "N", "refuse starts (503 backlog_full) while more than N executions wait for a worker (default 100000)"},
		{"rate", "N", "requests per second per token, or per client address without tokens (default 100, bursts to twice it); beyond it 429 rate_limited"},
		{"db-conns", "N", "PostgreSQL connections this process opens at most (default 20)"},
		{"cors-origin", "ORIGIN,…", "send CORS headers to these origins (none by default)"},
		{"retention", "D", "delete finished executions D after they finished, such as 30d (default: keep them)"},
		flagLimit,
		{"log-format", "FORMAT", "text (default) or json"},
		{"metrics-listen", "ADDR", "also serve /metrics here, with no token (keep the address private)"},
	},
	run: (*app).serve,
}

// tokenCommand is `loom token new NAME ROLE`.
var tokenCommand = &command{name: "token", usage: "token new NAME ROLE", minArgs: 3, maxArgs: 3, local: true,
	summary: "make a new API token for loom serve --tokens",
	help: `Prints a new random 256-bit token once, on stdout, and on stderr the line to
add to the token file (NAME ROLE SHA256-OF-TOKEN). The file holds no secret.
ROLE is read (every GET), start (also start executions) or operate (also
resume and cancel).`,
	run: (*app).token}

func (a *app) token() error {
	if a.p.args[0] != "new" {
		return usagef("unknown token subcommand %q (token new NAME ROLE)", a.p.args[0])
	}
	tok, line, err := server.NewToken(a.p.args[1], a.p.args[2])
	if err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintln(a.stdout, tok)
	fmt.Fprintf(a.stderr, "%s: add this line to the token file:\n%s\n", a.prog(), line)
	return nil
}

// serveOptions are serve's flags, checked.
type serveOptions struct {
	listen      string
	concurrency int
	drain       time.Duration
	maxBody     int64
	maxWait     time.Duration
	proxies     []*net.IPNet
	logJSON     bool
	maxStreams  int
	maxBacklog  int
	rate        float64
	dbConns     int
	corsOrigins []string
	limits      limits        // --limits, $LOOM_LIMITS
	retention   time.Duration // 0: keep forever
}

func (a *app) serveOptions() (serveOptions, error) {
	o := serveOptions{listen: "127.0.0.1:8080", concurrency: 64, drain: 25 * time.Second, maxBody: 4 << 20, maxWait: 60 * time.Second,
		maxStreams: server.DefaultMaxStreams, maxBacklog: server.DefaultMaxBacklog, rate: server.DefaultRate, dbConns: 20}
	if v := a.p.get("listen"); v != "" {
		o.listen = v
	}
	var err error
	if o.limits, err = a.limits(); err != nil {
		return o, err
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return o, usagef("--listen %q is not HOST:PORT", o.listen)
	}
	for _, c := range []struct {
		flag string
		dst  *int
	}{{"concurrency", &o.concurrency}, {"max-streams", &o.maxStreams}, {"max-backlog", &o.maxBacklog}, {"db-conns", &o.dbConns}} {
		if v := a.p.get(c.flag); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return o, usagef("--%s %q: use a number of at least 1", c.flag, v)
			}
			*c.dst = n
		}
	}
	if v := a.p.get("rate"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
			return o, usagef("--rate %q: use a number of requests per second above 0", v)
		}
		o.rate = n
	}
	if v := a.p.get("cors-origin"); v != "" {
		for _, c := range strings.Split(v, ",") {
			c = strings.TrimSpace(c)
			u, err := url.Parse(c)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
				return o, usagef("--cors-origin %q is not an origin such as https://ops.example.com", c)
			}
			o.corsOrigins = append(o.corsOrigins, c)
		}
	}
	for _, d := range []struct {
		flag string
		dst  *time.Duration
	}{{"drain", &o.drain}, {"max-wait", &o.maxWait}} {
		if v := a.p.get(d.flag); v != "" {
			n, err := time.ParseDuration(v)
			if err != nil || n < 0 {
				return o, usagef("--%s %q is not a duration such as 25s", d.flag, v)
			}
			*d.dst = n
		}
	}
	if v := a.p.get("max-body"); v != "" {
		n, err := parseSize(v)
		if err != nil {
			return o, usagef("--max-body %q: %v", v, err)
		}
		o.maxBody = n
	}
	if v := a.p.get("behind-proxy"); v != "" {
		for _, c := range strings.Split(v, ",") {
			_, n, err := net.ParseCIDR(strings.TrimSpace(c))
			if err != nil {
				return o, usagef("--behind-proxy %q is not a CIDR such as 10.0.0.0/8", c)
			}
			o.proxies = append(o.proxies, n)
		}
	}
	if v := a.p.get("retention"); v != "" {
		d, err := duration.Parse(v)
		if err != nil || d <= 0 {
			return o, usagef("--retention %q is not a duration such as 30d or 12h", v)
		}
		o.retention = d
	}
	switch f := a.p.get("log-format"); f {
	case "", "text":
	case "json":
		o.logJSON = true
	default:
		return o, usagef("--log-format %q: use text or json", f)
	}
	if a.p.has("tls-cert") != a.p.has("tls-key") {
		return o, usagef("--tls-cert and --tls-key go together")
	}
	return o, nil
}

// parseSize reads 4MiB, 512KiB, 1000 (bytes).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		n      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 1 {
				return 0, errors.New("use a size such as 4MiB, 512KiB or 1000")
			}
			return n * u.n, nil
		}
	}
	return 0, errors.New("use a size such as 4MiB")
}

func isLoopback(listen string) bool {
	host, _, _ := net.SplitHostPort(listen)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *app) serve() error {
	o, err := a.serveOptions()
	if err != nil {
		return err
	}
	cat, err := a.load(a.p.args[0], true)
	if err != nil {
		return err
	}
	var tokens *server.Tokens
	if f := a.p.get("tokens"); f != "" {
		if tokens, err = server.LoadTokens(f); err != nil {
			return refusef("%v", err)
		}
	}
	if !isLoopback(o.listen) {
		switch {
		case tokens == nil:
			return refusef("--listen %s is not loopback: serving it needs --tokens, or anyone who reaches it could run workflows", o.listen)
		case !a.p.has("tls-cert") && len(o.proxies) == 0:
			return refusef("--listen %s is not loopback: serving it needs --tls-cert/--tls-key, or --behind-proxy where TLS ends at a proxy", o.listen)
		}
	}
	var tlsCfg *tls.Config
	if a.p.has("tls-cert") {
		cert, err := tls.LoadX509KeyPair(a.p.get("tls-cert"), a.p.get("tls-key"))
		if err != nil {
			return refusef("cannot load --tls-cert/--tls-key: %v", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	a.dbConns = o.dbConns
	j, err := a.openJournal(true)
	if err != nil {
		return &cliError{kind: kindRefused, msg: err.Error()}
	}
	release := func() {}
	defer func() {
		j.Close()
		release() // after the journal: see lockServe
	}()
	if path := a.dbPath(); !isPostgresURL(path) {
		var held bool
		if release, held, err = lockServe(path); err != nil {
			return refusef("cannot lock the journal %s for this server: %v", path, unwrapPath(err))
		}
		if !held {
			release = func() {}
			return refusef("%s already serves the journal %s: run one loom serve per SQLite file (the CLI may use it beside the server), or PostgreSQL for several", otherServe(a.ctx, j), path)
		}
	}
	var h slog.Handler = slog.NewTextHandler(a.stderr, nil)
	if o.logJSON {
		h = slog.NewJSONHandler(a.stderr, nil)
	}
	log := slog.New(h)
	// $LOOM_LEASE_TTL shortens leases (default 30 s) where a dead
	// process's executions must be taken over sooner: crash tests.
	var ttl time.Duration
	if v := a.getenv("LOOM_LEASE_TTL"); v != "" {
		if ttl, err = time.ParseDuration(v); err != nil || ttl < time.Second {
			return usagef("$LOOM_LEASE_TTL %q: use a duration of at least 1s", v)
		}
	}
	// The console: its pages, and with a token file the sign-in sessions
	// that stand for a token on /v1 (a nil *Tokens must not become a
	// non-nil interface, hence the branch).
	copts := console.Options{HTTPS: func(r *http.Request) bool {
		return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" && fromProxy(r, o.proxies)
	}}
	if tokens != nil {
		copts.Tokens = tokens
	}
	con := console.New(copts)
	var sessions server.Sessions
	if tokens != nil {
		sessions = con
	}
	cfg := server.Config{Catalog: cat, Tasks: a.tasks, Journal: j, Concurrency: o.concurrency, MaxInput: o.limits.input,
		Tokens: tokens, MaxBody: o.maxBody, MaxWait: o.maxWait, Logger: log, LeaseTTL: ttl, Version: buildVersion(),
		EngineOptions: append(a.secretOptions(), interpreter.WithLimits(o.limits.engine)),
		Mount:         con.Handler(), Sessions: sessions,
		Rate: o.rate, MaxStreams: o.maxStreams, MaxBacklog: o.maxBacklog, CORSOrigins: o.corsOrigins, Proxies: o.proxies, Retention: o.retention}
	// Traces go over OTLP when the standard variables ask for them.
	if server.TracesConfigured() {
		if cfg.SpanExporter, err = server.NewOTLPExporter(context.Background()); err != nil {
			return refusef("cannot set up the OTLP trace exporter: %v", err)
		}
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return refusef("cannot listen on %s: %v", o.listen, unwrapNet(err))
	}
	hs := &http.Server{Handler: srv.Handler(), TLSConfig: tlsCfg,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: o.maxWait + 30*time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(h, slog.LevelWarn)}
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	dispatched := make(chan struct{})
	go func() {
		srv.Run(workCtx)
		close(dispatched)
	}()
	if tokens != nil {
		go tokens.Watch(workCtx, log)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-workCtx.Done():
					return
				case <-hup:
					if err := tokens.Reload(); err != nil {
						log.Error("token file not reloaded; the previous tokens stay", "error", err)
					} else {
						log.Info("token file reloaded")
					}
				}
			}
		}()
	}
	if ma := a.p.get("metrics-listen"); ma != "" {
		ml, err := net.Listen("tcp", ma)
		if err != nil {
			return refusef("cannot listen on --metrics-listen %s: %v", ma, unwrapNet(err))
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
		go ms.Serve(ml)
		defer ms.Close()
	}
	served := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			served <- hs.ServeTLS(ln, "", "")
		} else {
			served <- hs.Serve(ln)
		}
	}()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "workflows", len(cat.Names()), "concurrency", o.concurrency, "holder", srv.Holder().ID)
	select {
	case err := <-served:
		return fmt.Errorf("the HTTP server stopped: %v", err)
	case <-a.ctx.Done():
	}
	log.Info("draining", "drain", o.drain.String())
	dctx, cancel := context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	_ = srv.Drain(dctx)
	stopWork()
	<-dispatched
	sctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	_ = hs.Shutdown(sctx)
	_ = srv.Close() // sends the spans still queued
	log.Info("drained; exiting")
	return nil
}

// otherServe names the serve process that holds a SQLite journal's lock:
// its host and pid once its first heartbeat is journaled, which it does as
// it starts (waited for a few seconds).
func otherServe(ctx context.Context, j journal.Journal) string {
	for range 30 {
		if ws, err := j.Workers(ctx, 30*time.Second); err == nil {
			for _, w := range ws {
				if !interpreter.HolderGone(w.Holder()) {
					return fmt.Sprintf("another loom serve (host %s, pid %d)", w.Host, w.PID)
				}
			}
		}
		select {
		case <-ctx.Done():
			return "another loom serve"
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "another loom serve"
}

func unwrapNet(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

// fromProxy reports whether r came from one of the --behind-proxy
// addresses, whose X-Forwarded-* headers count.
func fromProxy(r *http.Request, proxies []*net.IPNet) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	for _, n := range proxies {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}
