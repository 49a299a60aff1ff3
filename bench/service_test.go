package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loomwork/loom/builtins"
	"github.com/loomwork/loom/internal/pgtest"
	"github.com/loomwork/loom/internal/servetest"
	"github.com/loomwork/loom/interpreter"
	"github.com/loomwork/loom/journal"
	"github.com/loomwork/loom/journal/postgres"
)

// The service benchmarks (issue #9): real `loom serve` processes (cmd/loom
// built once, internal/servetest) called over HTTP, each figure beside the
// in-process engine's measured in the same run:
//
//	go test ./bench -run '^$' -bench Service -benchtime 1x
//
// The PostgreSQL runs need $LOOM_POSTGRES_DSN (else they skip), and
// $LOOM_BENCH_EXECUTIONS sets the executions of the throughput runs
// (default 500).

// httpc keeps connections to the serves open, as a real client does.
var httpc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func benchExecutions() int {
	if n, err := strconv.Atoi(os.Getenv("LOOM_BENCH_EXECUTIONS")); err == nil && n > 0 {
		return n
	}
	return 500
}

// serveCatalog writes a catalog of one workflow file for the serves.
func serveCatalog(b *testing.B, name, yaml string) string {
	dir := filepath.Join(b.TempDir(), "flows")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// startServes starts procs serves of catalog on journal db, stopped when
// b ends. --rate: all the load comes from this one client address.
func startServes(b *testing.B, procs int, db, catalog string) []*servetest.Proc {
	loom := servetest.Loom(b)
	logs := b.TempDir()
	ps := make([]*servetest.Proc, procs)
	for i := range ps {
		ps[i] = servetest.Start(b, loom, logs, servetest.FreePort(b), nil, catalog, "--db", db, "--rate", "1000000")
	}
	b.Cleanup(func() {
		for _, p := range ps {
			p.Stop()
		}
	})
	return ps
}

// call sends a request and decodes a 2xx answer into out.
func call(method, url, body string, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// parallel runs fn(0…n-1) on workers goroutines; the first error wins.
func parallel(n, workers int, fn func(i int) error) error {
	work := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(i); err != nil {
					errs <- err
					for range work {
					}
					return
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

type apiRecord struct {
	State  string          `json:"state"`
	Output json.RawMessage `json:"output"`
}

// untilCompleted long-polls url until its execution is COMPLETED.
func untilCompleted(url string) (apiRecord, error) {
	for {
		var rec apiRecord
		if err := call("GET", url+"?wait=60s&until=finished", "", &rec); err != nil {
			return rec, err
		}
		switch rec.State {
		case "COMPLETED":
			return rec, nil
		case "FAILED", "CANCELLED":
			return rec, fmt.Errorf("%s: %s", url, rec.State)
		}
	}
}

// inProcessSteps is the baseline: n executions of the 10-echo chain run by
// an engine in this process, 64 at a time (a serve's default
// concurrency), on a fresh journal j; steps per second.
func inProcessSteps(b *testing.B, j journal.Journal, n int) float64 {
	eng := interpreter.New(chain(b, 10), builtins.Standard(), j)
	start := time.Now()
	if err := parallel(n, 64, func(int) error {
		ex, err := eng.Run(context.Background(), "chain", nil)
		if err == nil && ex.State != journal.Completed {
			err = fmt.Errorf("state %s", ex.State)
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return float64(10*n) / time.Since(start).Seconds()
}

// BenchmarkServiceThroughput: executions of the 10-echo chain started over
// HTTP (32 clients, spread over the processes) and driven to completion,
// on SQLite (one process) and PostgreSQL (one and three processes).
// starts/s counts the 201s; steps/s the whole run, start to the last
// completion; x-inprocess is steps/s over the in-process engine's on
// SQLite (./bench's baseline), x-inprocess-pg over its own on PostgreSQL.
func BenchmarkServiceThroughput(b *testing.B) {
	for _, c := range []struct {
		name  string
		procs int
		pg    bool
	}{{"sqlite-1", 1, false}, {"postgres-1", 1, true}, {"postgres-3", 3, true}} {
		b.Run(c.name, func(b *testing.B) {
			db := filepath.Join(b.TempDir(), "loom.db")
			if c.pg {
				_, db = pgtest.Schema(b, "bench")
			}
			n := benchExecutions()
			base := inProcessSteps(b, openSQLite(b), n)
			basePG := 0.0
			if c.pg {
				_, dsn := pgtest.Schema(b, "benchin")
				j, err := postgres.Open(context.Background(), dsn)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { j.Close() })
				basePG = inProcessSteps(b, j, n)
			}
			ps := startServes(b, c.procs, db, serveCatalog(b, "chain", chainYAML(10)))
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				start := time.Now()
				if err := parallel(n, 32, func(i int) error {
					return call("POST", ps[i%len(ps)].URL+"/v1/executions", fmt.Sprintf(`{"workflow": "chain", "id": "t%d-%d"}`, it, i), nil)
				}); err != nil {
					b.Fatal(err)
				}
				started := time.Since(start)
				if err := parallel(n, 32, func(i int) error {
					_, err := untilCompleted(fmt.Sprintf("%s/v1/executions/t%d-%d", ps[i%len(ps)].URL, it, i))
					return err
				}); err != nil {
					b.Fatal(err)
				}
				done := time.Since(start)
				b.ReportMetric(float64(n)/started.Seconds(), "starts/s")
				b.ReportMetric(float64(n)/done.Seconds(), "executions/s")
				b.ReportMetric(float64(10*n)/done.Seconds(), "steps/s")
				b.ReportMetric(base, "inprocess-steps/s")
				b.ReportMetric(float64(10*n)/done.Seconds()/base, "x-inprocess")
				if basePG > 0 {
					b.ReportMetric(basePG, "inprocess-pg-steps/s")
					b.ReportMetric(float64(10*n)/done.Seconds()/basePG, "x-inprocess-pg")
				}
			}
		})
	}
}

// quantiles are the median and 99th percentile of ds, in milliseconds.
func quantiles(ds []time.Duration) (p50, p99 float64) {
	slices.Sort(ds)
	at := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000 }
	return at(0.5), at(0.99)
}

// BenchmarkServiceWaitLatency: one 10-echo execution at a time started
// over HTTP with ?wait=30s&until=finished (one serve, SQLite), from the
// request to the answer holding the COMPLETED record; beside one
// execution run by the engine in this process on SQLite.
func BenchmarkServiceWaitLatency(b *testing.B) {
	const k = 200
	eng := interpreter.New(chain(b, 10), builtins.Standard(), openSQLite(b))
	local := make([]time.Duration, k)
	for i := range local {
		start := time.Now()
		if _, err := eng.Run(context.Background(), "chain", nil); err != nil {
			b.Fatal(err)
		}
		local[i] = time.Since(start)
	}
	ps := startServes(b, 1, filepath.Join(b.TempDir(), "loom.db"), serveCatalog(b, "chain", chainYAML(10)))
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		remote := make([]time.Duration, k)
		for i := range remote {
			var rec apiRecord
			start := time.Now()
			if err := call("POST", ps[0].URL+"/v1/executions?wait=30s&until=finished", fmt.Sprintf(`{"workflow": "chain", "id": "w%d-%d"}`, it, i), &rec); err != nil {
				b.Fatal(err)
			}
			remote[i] = time.Since(start)
			if rec.State != "COMPLETED" {
				b.Fatalf("w%d-%d: %s", it, i, rec.State)
			}
		}
		p50, p99 := quantiles(remote)
		l50, l99 := quantiles(local)
		b.ReportMetric(p50, "p50-ms")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(l50, "inprocess-p50-ms")
		b.ReportMetric(l99, "inprocess-p99-ms")
		b.ReportMetric(p50/l50, "x-inprocess-p50")
		b.ReportMetric(p99/l99, "x-inprocess-p99")
	}
}

const napYAML = `name: nap
steps:
  - id: z
    sleep: 10s
  - id: t
    set: {at: "${ now() }"}
output: ${ vars.at }
`

// BenchmarkServiceTimerLag: 1,000 executions that sleep 10 s (a durable
// timer: WAITING, fired by the dispatcher, SPEC §6) on one serve over
// SQLite. A timer's lag is from its due time (the timer.set event's
// wake_at) to now() in the step after it; x-1s is the 99th percentile
// over SPEC §6's bound of 1 s.
func BenchmarkServiceTimerLag(b *testing.B) {
	const n = 1000
	ps := startServes(b, 1, filepath.Join(b.TempDir(), "loom.db"), serveCatalog(b, "nap", napYAML))
	url := ps[0].URL
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		if err := parallel(n, 32, func(i int) error {
			return call("POST", url+"/v1/executions", fmt.Sprintf(`{"workflow": "nap", "id": "n%d-%d"}`, it, i), nil)
		}); err != nil {
			b.Fatal(err)
		}
		lags := make([]time.Duration, n)
		if err := parallel(n, 32, func(i int) error {
			ex := fmt.Sprintf("%s/v1/executions/n%d-%d", url, it, i)
			rec, err := untilCompleted(ex)
			if err != nil {
				return err
			}
			var fired time.Time
			if err := json.Unmarshal(rec.Output, &fired); err != nil {
				return fmt.Errorf("%s: output %s: %v", ex, rec.Output, err)
			}
			var evs struct {
				Events []struct {
					Kind string `json:"kind"`
					Data struct {
						WakeAt time.Time `json:"wake_at"`
					} `json:"data"`
				} `json:"events"`
			}
			if err := call("GET", ex+"/events", "", &evs); err != nil {
				return err
			}
			for _, e := range evs.Events {
				if e.Kind == string(journal.TimerSet) {
					lags[i] = fired.Sub(e.Data.WakeAt)
					return nil
				}
			}
			return fmt.Errorf("%s: no %s event", ex, journal.TimerSet)
		}); err != nil {
			b.Fatal(err)
		}
		p50, p99 := quantiles(lags)
		b.ReportMetric(p50, "p50-ms")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(p99/1000, "x-1s")
	}
}

const holdYAML = `name: hold
steps:
  - id: p
    pause: wait
`

// BenchmarkServiceRSS: the resident memory of one serve (SQLite, from
// /proc) idle, holding 1,000 paused executions, and holding 10,000; a
// paused execution holds no memory (SPEC §6), so x-1k-to-10k stays near 1.
func BenchmarkServiceRSS(b *testing.B) {
	ps := startServes(b, 1, filepath.Join(b.TempDir(), "loom.db"), serveCatalog(b, "hold", holdYAML))
	p := ps[0]
	mib := func() float64 {
		rss, err := p.RSS()
		if err != nil {
			b.Skip("no RSS to read: ", err)
		}
		return float64(rss) / (1 << 20)
	}
	// hold starts executions [from, to) and returns once none is RUNNING.
	hold := func(it, from, to int) {
		if err := parallel(to-from, 32, func(i int) error {
			return call("POST", p.URL+"/v1/executions", fmt.Sprintf(`{"workflow": "hold", "id": "h%d-%d"}`, it, from+i), nil)
		}); err != nil {
			b.Fatal(err)
		}
		for {
			var out struct {
				Executions []json.RawMessage `json:"executions"`
			}
			if err := call("GET", p.URL+"/v1/executions?state=RUNNING&limit=1", "", &out); err != nil {
				b.Fatal(err)
			}
			if len(out.Executions) == 0 {
				return
			}
			time.Sleep(200 * time.Millisecond) // polls the process until it has paused them all
		}
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		idle := mib()
		hold(it, 0, 1000)
		at1k := mib()
		hold(it, 1000, 10000)
		at10k := mib()
		b.ReportMetric(idle, "idle-MiB")
		b.ReportMetric(at1k, "1k-paused-MiB")
		b.ReportMetric(at10k, "10k-paused-MiB")
		b.ReportMetric(at10k/at1k, "x-1k-to-10k")
	}
}
