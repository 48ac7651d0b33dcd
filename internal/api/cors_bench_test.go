package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/testutil"
)

// BenchmarkSDKRecordOverHTTP: what the SDK's path costs the API itself: a
// POST /v1/consents with the publishable key from a product's origin (the
// CORS grant and the origin check on top of authentication,
// authorization and decoding) against the same POST without an Origin, in
// the same run, over loopback from 8 clients, with the ledger faked so the
// database does not drown the difference (internal/sdk's
// BenchmarkSDKConsentWrite measures it with PostgreSQL). Reports both rates
// and their ratio.
func BenchmarkSDKRecordOverHTTP(b *testing.B) {
	eng, err := engine()
	if err != nil {
		b.Fatal(err)
	}
	svc := &ConsentService{calls: &calls{}, EngineFn: func() *policy.Engine { return eng },
		RecordFn: func(_ context.Context, in consent.RecordInput) (consent.Event, error) {
			return consent.Event{ID: "01925f3e-7c1a-7b4e-9a3d-2f6b8c1d4e5a", SubjectKind: in.Subject.Kind(), Purpose: in.Purpose, State: in.State,
				Source: in.Source, NoticeVersion: in.NoticeVersion, Product: "web", RecordedAt: time.Now()}, nil
		}}
	keys := &KeyAuthenticator{AuthenticateFn: func(context.Context, string) (apikey.Key, error) {
		return apikey.Key{ID: "key_sdk", Role: "sdk"}, nil
	}}
	app := api.New(api.DefaultConfig(), api.Deps{Log: slog.New(slog.DiscardHandler), Consent: svc, Keys: keys})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	defer func() { client.CloseIdleConnections(); _ = app.Shutdown() }()
	var seq atomic.Int64
	write := func(origin string) error {
		body := fmt.Sprintf(`{"subject":"visitor:bench-%08d","purpose":"analytics","state":"granted","source":"web_banner","notice_version":"2.0"}`, seq.Add(1))
		req, _ := http.NewRequest("POST", base+"/v1/consents", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer stw_live_bench")
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 201 {
			return fmt.Errorf("record: HTTP %d", res.StatusCode)
		}
		return nil
	}
	run := func(origin string, n int) time.Duration {
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		start := time.Now()
		for range 8 {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if err := write(origin); err != nil {
						failed.Store(err)
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
	run(webOrigin, 500)
	run("", 500)
	const rounds, per = 10, 500
	var p testutil.Paired
	for b.Loop() {
		p.Rounds(rounds, per, func(n int) time.Duration { return run(webOrigin, n) }, func(n int) time.Duration { return run("", n) })
	}
	ratio, writes := p.Ratio(), p.Ops
	sdkRate, baseRate := p.Rates()
	b.ReportMetric(sdkRate, "sdk-req/s")
	b.ReportMetric(baseRate, "baseline-req/s")
	b.ReportMetric(ratio, "sdk/baseline")
	b.Logf("record over HTTP, ledger faked: with Origin (CORS) %.0f/s, without %.0f/s, ratio %.3f (%d each)", sdkRate, baseRate, ratio, writes)
}
