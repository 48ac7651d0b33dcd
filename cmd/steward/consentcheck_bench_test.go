package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/logbuf"
	"github.com/steward-privacy/steward/internal/testutil"
)

// BenchmarkConsentCheckVsBare is scripts/bench.sh's steward/bare ratio
// without wrk: GET /v1/consent/check on a whole replica (API key, rate
// limiter, policy, ledger in PostgreSQL, access log on at info through the
// production logger into a file) against a bare fiber handler returning a
// constant body (bench/bare), both served on loopback TCP to 32
// concurrent fasthttp clients in the same process (as wrk -c32 does). Rounds alternate
// which server goes first; the median of the rounds' ratios is reported as
// steward/bare (issue 20's target: >= 0.8), with both rates, and the
// ratio of CPU time per check (steward/bare-cpu), which the load of a
// shared machine disturbs far less.
func BenchmarkConsentCheckVsBare(b *testing.B) {
	e := newEnv(b, nil)
	logFile, err := os.Create(filepath.Join(b.TempDir(), "steward.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	lw := logbuf.New(logFile, 200*time.Millisecond)
	defer lw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, err := build(ctx, e.cfg, newLogger(lw, slog.LevelInfo), clock.Real{}, needServer)
	if err != nil {
		b.Fatal(err)
	}
	a.start(context.Background())
	defer func() { _ = a.shutdown(5 * time.Second) }()

	bare := fiber.New(fiber.Config{DisableStartupMessage: true})
	bareBody := []byte(`{"allow":true,"reason":"opt_out_default","policy_revision":"bench-constant","regime":"ccpa"}`)
	bare.Get("/v1/consent/check", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(bareBody)
	})
	defer func() { _ = bare.Shutdown() }()

	const conns = 32
	serve := func(app *fiber.App) *fasthttp.HostClient {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = app.Listener(ln) }()
		return &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: conns}
	}
	stewardClient, bareClient := serve(a.http), serve(bare)
	const uri = "http://127.0.0.1/v1/consent/check?subject=visitor:bench0000abcd&purpose=analytics&jurisdiction=US-CA"
	auth := "Bearer " + e.keys["frontend"]

	// cpu is the process's CPU time so far (clients and servers alike).
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var stewardCPU, bareCPU time.Duration
	// run sends n checks from conns goroutines and returns how long they took.
	run := func(hc *fasthttp.HostClient, n int) time.Duration {
		cpu0 := cpu()
		defer func() {
			if hc == stewardClient {
				stewardCPU += cpu() - cpu0
			} else {
				bareCPU += cpu() - cpu0
			}
		}()
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		start := time.Now()
		for range conns {
			wg.Go(func() {
				req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(res)
				req.SetRequestURI(uri)
				req.Header.Set(fiber.HeaderAuthorization, auth)
				for next.Add(1) <= int64(n) {
					if err := hc.Do(req, res); err != nil {
						failed.Store(err)
						return
					}
					if res.StatusCode() != 200 {
						failed.Store(fmt.Errorf("HTTP %d: %s", res.StatusCode(), res.Body()))
						return
					}
				}
			})
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	run(stewardClient, 2000) // warm: key and subject caches, policy memo, connections
	run(bareClient, 2000)
	stewardCPU, bareCPU = 0, 0
	const rounds, per = 10, 20000
	var p testutil.Paired
	for b.Loop() {
		p.Rounds(rounds, per, func(n int) time.Duration { return run(stewardClient, n) }, func(n int) time.Duration { return run(bareClient, n) })
	}
	ratio, checks := p.Ratio(), p.Ops
	sRate, bRate := p.Rates()
	b.ReportMetric(sRate, "steward-req/s")
	b.ReportMetric(bRate, "bare-req/s")
	b.ReportMetric(ratio, "steward/bare")
	// On a machine shared with other work the wall-clock ratio says as much
	// about the scheduler as about the code; CPU time per check does not.
	cpuRatio := bareCPU.Seconds() / stewardCPU.Seconds()
	b.ReportMetric(float64(stewardCPU.Microseconds())/float64(checks), "steward-cpu-us/check")
	b.ReportMetric(float64(bareCPU.Microseconds())/float64(checks), "bare-cpu-us/check")
	b.ReportMetric(cpuRatio, "steward/bare-cpu")
	b.Logf("consent check in process, access log on: steward %.0f/s, bare %.0f/s, median ratio %.3f; CPU per check (client and server) steward %.1f µs, bare %.1f µs, ratio %.3f (%d each)",
		sRate, bRate, ratio, float64(stewardCPU.Microseconds())/float64(checks), float64(bareCPU.Microseconds())/float64(checks), cpuRatio, checks)
}
