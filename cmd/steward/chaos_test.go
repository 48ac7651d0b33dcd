package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors/creem/creemfake"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
	"github.com/steward-privacy/steward/internal/demo"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/notify/telegramtest"
	"github.com/steward-privacy/steward/internal/testpeer"
)

// The crash harness (issue 20): two real `steward serve` processes share
// one database and the demo deployment's connectors (the application
// database, the object store, the Stripe and Creem fakes, the Resend and
// Telegram stand-ins); privacy requests of every type for web and bot
// people, and consent writes, go in through the API while a seeded RNG
// SIGKILLs a replica at random moments and restarts it. Afterwards every
// request must reach its terminal state within seconds of the last
// restart, and no effect may have happened twice, counted where a vendor
// would count it: in the fakes after Idempotency-Key dedupe, in the
// application database's rows, in the object store, in the emails and bot
// messages that went out.
//
// `make test` runs a bounded version; `make chaos` a longer one through
// STEWARD_CHAOS_KILLS, STEWARD_CHAOS_REQUESTS and STEWARD_CHAOS_SEED.

// chaosTypes are the request types the product has (internal/dsar/plan.go).
var chaosTypes = []string{"access", "export", "erasure", "rectification", "restriction", "objection"}

func chaosEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// chaosReplica is one `steward serve` process slot: the address stays,
// the process comes and goes.
type chaosReplica struct {
	name, addr, bin, logFile string
	env                      []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	up   atomic.Bool // listening and ready, as far as the harness knows
}

func (r *chaosReplica) base() string { return "http://" + r.addr }

func (r *chaosReplica) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(r.logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.bin, "serve")
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("start %s: %v", r.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = f.Close(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
}

// waitReady waits until the replica answers /readyz, or its process ends.
func (r *chaosReplica) waitReady(timeout time.Duration) error {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready (log %s)", r.name, r.logFile)
		default:
		}
		if res, err := c.Get(r.base() + "/readyz"); err == nil {
			_ = res.Body.Close()
			if res.StatusCode == 200 {
				r.up.Store(true)
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", r.name, timeout)
}

func (r *chaosReplica) kill() {
	r.up.Store(false)
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// chaosClient sends API calls to whichever replica is up, retrying on
// another (or later) when the one it chose dies under the call: what a
// load balancer in front of the replicas does.
type chaosClient struct {
	t        *testing.T
	replicas []*chaosReplica
	rng      func() int
	http     *http.Client
	mu       sync.Mutex
	retried  int
	errors5x []string
}

func (c *chaosClient) do(method, path, key string, body any, headers ...string) resp {
	c.t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			c.t.Fatal(err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 0; ; attempt++ {
		var live []*chaosReplica
		for _, r := range c.replicas {
			if r.up.Load() {
				live = append(live, r)
			}
		}
		if len(live) > 0 {
			r := live[c.rng()%len(live)]
			var rd io.Reader
			if raw != nil {
				rd = bytes.NewReader(raw)
			}
			req, _ := http.NewRequest(method, r.base()+path, rd)
			if raw != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			if res, err := c.http.Do(req); err == nil {
				b, rerr := io.ReadAll(res.Body)
				_ = res.Body.Close()
				if rerr == nil {
					if res.StatusCode >= 500 {
						// A replica answering 5xx is a finding whatever the
						// cause; the call is still retried so the run goes on.
						c.mu.Lock()
						c.errors5x = append(c.errors5x, fmt.Sprintf("%s %s on %s: %d %s", method, path, r.name, res.StatusCode, b))
						c.mu.Unlock()
					} else {
						p, _, _ := strings.Cut(path, "?")
						if err := openapiDoc(c.t).Validate(method, p, res.StatusCode, res.Header.Get("Content-Type"), b); err != nil {
							c.t.Errorf("response does not match openapi.json: %v\nbody: %s", err, b)
						}
						if op, err := openapiDoc(c.t).Operation(method, p); err == nil {
							exercised.Store(op, true)
						}
						return resp{status: res.StatusCode, header: res.Header, body: b}
					}
				}
			}
			c.mu.Lock()
			c.retried++
			c.mu.Unlock()
		}
		if time.Now().After(deadline) {
			c.t.Errorf("%s %s: no replica answered within 90s", method, path)
			return resp{header: http.Header{}}
		}
		time.Sleep(time.Duration(20+10*min(attempt, 20)) * time.Millisecond)
	}
}

// chaosRequest is one privacy request of the workload.
type chaosRequest struct {
	typ, subject, channel string
	email, userID         string // web people
	tg                    int64  // bot people
	id                    string
	done                  atomic.Bool
	doneAt                time.Time
	status                dsar.Status
}

func TestChaosCrashReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kills := chaosEnvInt(t, "STEWARD_CHAOS_KILLS", 20)
	nreq := chaosEnvInt(t, "STEWARD_CHAOS_REQUESTS", 24)
	seed := int64(time.Now().UnixNano() % 1_000_000_007)
	if s := os.Getenv("STEWARD_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("STEWARD_CHAOS_SEED=%q: %v", s, err)
		}
	}
	if kills < 20 {
		t.Fatalf("STEWARD_CHAOS_KILLS=%d: the harness kills at least 20 times", kills)
	}
	nreq = max(nreq, 2*len(chaosTypes)) // every type, for web and bot people
	t.Logf("chaos: seed %d (STEWARD_CHAOS_SEED=%d reproduces the schedule), %d kills, %d requests", seed, seed, kills, nreq)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos: FAILED with seed %d: STEWARD_CHAOS_SEED=%d STEWARD_CHAOS_KILLS=%d STEWARD_CHAOS_REQUESTS=%d", seed, seed, kills, nreq)
		}
	})
	began := time.Now()
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	var rngMu sync.Mutex
	rint := func(n int) int { rngMu.Lock(); defer rngMu.Unlock(); return rng.IntN(n) }
	rdur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rint(int(hi-lo)+1)) }

	// The server binary, built once as `make build` does.
	dir := t.TempDir()
	bin := filepath.Join(dir, "steward")
	built := make(chan error, 1)
	go func() {
		out, err := exec.Command("go", "build", "-o", bin, "github.com/steward-privacy/steward/cmd/steward").CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go build: %w\n%s", err, out)
		}
		built <- err
	}()

	// The peers, in this process so the harness can count what reached them.
	mail := resendtest.New(t)
	bot := telegramtest.New(t)
	e := newEnv(t, map[string]string{
		"STEWARD_RESEND_API_KEY": "re_chaos", "STEWARD_RESEND_BASE_URL": mail.URL, "STEWARD_EMAIL_FROM": "Privacy <privacy@example.com>",
		"STEWARD_TELEGRAM_BOT_TOKEN": bot.Token(), "STEWARD_TELEGRAM_API_URL": bot.URL,
	})
	appDB := fmt.Sprintf("steward_chaos_%d", time.Now().UnixNano())
	appURL, err := demo.WithDatabaseName(e.url, appDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropDatabase(t, appDB) })
	s3srv := testpeer.S3(t)
	runDemo := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := demo.Run(ctx, args, &out, &errb, func(string) string { return "" }); code != 0 {
			t.Fatalf("steward-demo %s: exit %d\n%s", args[0], code, errb.String())
		}
		return out.String()
	}
	people := nreq/2 + 4
	runDemo("seed", "--database", appURL, "--people", strconv.Itoa(people), "--s3-endpoint", s3srv.Endpoint,
		"--s3-access-key", s3srv.AccessKey, "--s3-secret-key", s3srv.SecretKey)
	sf := stripefake.New()
	t.Cleanup(sf.Close)
	cf := creemfake.New(demo.CreemAPIKey)
	t.Cleanup(cf.Close)
	if n, err := demo.SeedProviders(ctx, appURL, sf, cf); err != nil || n < nreq/2 {
		t.Fatalf("seed providers: %d people linked, %v", n, err)
	}
	connFile := filepath.Join(dir, "connectors.yaml")
	runDemo("connectors", "--database", appURL, "--s3-endpoint", s3srv.Endpoint, "--s3-access-key", s3srv.AccessKey,
		"--s3-secret-key", s3srv.SecretKey, "--stripe-url", sf.URL(), "--creem-url", cf.URL(), "--out", connFile)
	app, err := pgxpool.New(ctx, appURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	installEffectLog(t, app)

	// The workload's people: distinct web and bot people per request, so
	// every effect belongs to one request.
	type webPerson struct{ id, email string }
	rows, _ := app.Query(ctx, `SELECT id::text, email FROM app.users WHERE email LIKE '%@%' ORDER BY created_at, id`)
	webPeople, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (webPerson, error) {
		var p webPerson
		return p, r.Scan(&p.id, &p.email)
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ = app.Query(ctx, `SELECT tg_id FROM bot.tg_users ORDER BY tg_id`)
	botPeople, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	var reqs []*chaosRequest
	for i := range nreq {
		typ := chaosTypes[(i/2)%len(chaosTypes)]
		r := &chaosRequest{typ: typ}
		if i%2 == 0 {
			p := webPeople[i/2]
			r.channel, r.subject, r.email, r.userID = dsar.ChannelWeb, "email:"+p.email, p.email, p.id
		} else {
			r.channel, r.tg = dsar.ChannelBot, botPeople[i/2]
			r.subject = "tg:" + strconv.FormatInt(r.tg, 10)
		}
		reqs = append(reqs, r)
	}
	// Objects per web person before, to tell erased from kept.
	objectsOf := func(userID string) int {
		n := 0
		for _, prefix := range []string{"uploads/", "masks/", "generated/"} {
			pages := s3.NewListObjectsV2Paginator(s3srv.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(demo.Bucket), Prefix: aws.String(prefix + userID + "/")})
			for pages.HasMorePages() {
				page, err := pages.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n += len(page.Contents)
			}
		}
		return n
	}
	objectsBefore := map[string]int{}
	for _, r := range reqs {
		if r.userID != "" {
			objectsBefore[r.userID] = objectsOf(r.userID)
		}
	}

	if err := <-built; err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 2)
	var replicas []*chaosReplica
	for i, addr := range addrs {
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		vars := map[string]string{}
		for k, v := range e.vars {
			vars[k] = v
		}
		// A short lease: a killed replica's jobs come back within seconds.
		vars["STEWARD_JOB_LEASE"] = "1500ms"
		vars["STEWARD_OUTBOX_POLL"] = "200ms"
		vars["STEWARD_ADDR"] = addr
		vars["STEWARD_CONNECTORS"] = connFile
		vars["STEWARD_LOG_LEVEL"] = "info"
		vars["STEWARD_EXPORT_URL"] = "http://" + addr + "/v1/exports/"
		// Behind a load balancer: each web person asks from their own
		// address, so the per-network limit on verification codes counts
		// them apart, as it would in production.
		vars["STEWARD_TRUSTED_PROXIES"] = "127.0.0.1"
		for k, v := range vars {
			env = append(env, k+"="+v)
		}
		r := &chaosReplica{name: fmt.Sprintf("replica-%d", i+1), addr: addr, bin: bin, env: env, logFile: filepath.Join(dir, fmt.Sprintf("replica-%d.log", i+1))}
		r.start(t)
		replicas = append(replicas, r)
	}
	t.Cleanup(func() {
		for _, r := range replicas {
			r.kill()
		}
	})
	for _, r := range replicas {
		if err := r.waitReady(120 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	client := &chaosClient{t: t, replicas: replicas, rng: func() int { return rint(1 << 20) }, http: &http.Client{Timeout: 30 * time.Second}}
	front, reviewer := e.keys["frontend"], e.keys["reviewer"]
	t.Logf("chaos: set up in %s (two replicas ready)", time.Since(began).Round(time.Millisecond))

	// Chaos: kills spread over the active period, each of a live replica,
	// preferably while a task runs; a restart after a short random delay.
	// Now and then both are down at once.
	runningTasks := func() int {
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM privacy_request_tasks WHERE status = 'running'`).Scan(&n)
		return n
	}
	var killsDone, midTask, bothDown, openAtLast atomic.Int32
	var reqsMu sync.Mutex
	openRequests := func() int {
		reqsMu.Lock()
		defer reqsMu.Unlock()
		n := 0
		for _, r := range reqs {
			if r.id != "" && !r.done.Load() {
				n++
			}
		}
		return n
	}
	// lastRestart is when the first replica was back after the final kill
	// (both replicas down): from then on the open requests must finish.
	var lastRestart, finalKillAt atomic.Int64
	chaosDone := make(chan struct{})
	finalGo := make(chan struct{})
	var finalOnce sync.Once
	go func() {
		defer close(chaosDone)
		var wg sync.WaitGroup
		for k := 0; int(killsDone.Load()) < kills; k++ {
			time.Sleep(rdur(200*time.Millisecond, 1200*time.Millisecond))
			// Wait a little for work in flight, so the kill lands mid-task;
			// the last kill waits longer, and takes both replicas down:
			// what is open then must be finished by the restarted ones.
			final := int(killsDone.Load()) == kills-1
			waits := 20
			if final {
				wg.Wait() // both up, so the held-back requests get in
				finalOnce.Do(func() { close(finalGo) })
				waits = 400
			}
			for range waits {
				if runningTasks() > 0 && (!final || openRequests() > 0) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			var live []*chaosReplica
			for _, r := range replicas {
				if r.up.Load() {
					live = append(live, r)
				}
			}
			if len(live) == 0 {
				wg.Wait()
				continue
			}
			victims := []*chaosReplica{live[rint(len(live))]}
			if len(live) == 2 && (final || rint(6) == 0 && int(killsDone.Load()) < kills-2) {
				victims = live
				bothDown.Add(1)
			}
			if runningTasks() > 0 {
				midTask.Add(1)
			}
			if final {
				openAtLast.Store(int32(openRequests()))
				finalKillAt.Store(time.Now().UnixNano())
			}
			for _, v := range victims {
				v.kill()
				killsDone.Add(1)
				delay := rdur(100*time.Millisecond, 1500*time.Millisecond)
				wg.Add(1)
				go func(v *chaosReplica) {
					defer wg.Done()
					time.Sleep(delay)
					v.start(t)
					if err := v.waitReady(120 * time.Second); err != nil {
						t.Errorf("restart after kill %d: %v", k+1, err)
						return
					}
					if finalKillAt.Load() != 0 {
						lastRestart.CompareAndSwap(0, time.Now().UnixNano())
					}
				}(v)
			}
			// Half the time the next kill waits for the restart; the other
			// half it may land on a replica still starting or on the other.
			if rint(2) == 0 {
				wg.Wait()
			}
		}
		wg.Wait()
	}()

	// The workload, submitted while the chaos goes on.
	var consentsAcked []string
	var consentsMu sync.Mutex
	var wl sync.WaitGroup
	for i, r := range reqs {
		wl.Add(1)
		go func() {
			defer wl.Done()
			// Submissions are paced by the kills, so that work is in
			// flight from the first kill to the last.
			// The last few wait for the final kill, which waits for them.
			target := kills - 1
			if tail := max(2, nreq/8); i < nreq-tail {
				target = i * (kills - 1) / (nreq - tail)
			} else {
				select {
				case <-finalGo:
				case <-chaosDone:
				}
			}
		pace:
			for int(killsDone.Load()) < target {
				select {
				case <-chaosDone:
					break pace
				case <-time.After(50 * time.Millisecond):
				}
			}
			time.Sleep(time.Duration(rint(300)) * time.Millisecond)
			body := map[string]any{"type": r.typ, "subject": r.subject, "region": "DE", "channel": r.channel}
			if r.channel == dsar.ChannelBot {
				body["identity_asserted"] = true
			}
			if r.typ == "rectification" {
				body["changes"] = map[string]string{"user.name": fmt.Sprintf("Corrected Name %d", i)}
			}
			xff := fmt.Sprintf("198.51.100.%d", 1+i%250)
			res := client.do("POST", "/v1/privacy-requests", front, body, "X-Forwarded-For", xff)
			if res.status != 201 && res.status != 200 {
				t.Errorf("create %s: %d %s", r.typ, res.status, res.body)
				r.done.Store(true)
				return
			}
			var c createdReq
			if err := json.Unmarshal(res.body, &c); err != nil {
				t.Errorf("create: %v", err)
				r.done.Store(true)
				return
			}
			reqsMu.Lock()
			r.id = c.Request.ID
			reqsMu.Unlock()
			// A consent write for the person too.
			state := []string{"granted", "denied"}[(i/2)%2]
			consent := grant(r.subject, "analytics", state)
			if r.channel == dsar.ChannelBot {
				consent["notice_version"] = "1.0" // the bot product's notice
			}
			if cr := client.do("POST", "/v1/consents", front, consent, "X-Forwarded-For", xff); cr.status == 201 || cr.status == 200 {
				var out struct {
					Event struct {
						ID string `json:"id"`
					} `json:"event"`
				}
				// An erasure takes the person's consent history with it;
				// the other people's must all be there at the end.
				if err := json.Unmarshal(cr.body, &out); err == nil && out.Event.ID != "" && r.typ != "erasure" {
					consentsMu.Lock()
					consentsAcked = append(consentsAcked, out.Event.ID)
					consentsMu.Unlock()
				}
			} else {
				t.Errorf("consent write: %d %s", cr.status, cr.body)
			}
			if r.channel == dsar.ChannelWeb {
				code := waitCode(t, mail, r.email, 90*time.Second)
				if code == "" {
					r.done.Store(true)
					return
				}
				if v := client.do("POST", "/v1/privacy-requests/"+r.id+"/verify", "", map[string]any{"code": code}, "X-Forwarded-For", xff); v.status != 200 && v.status != 409 {
					t.Errorf("verify %s: %d %s", r.id, v.status, v.body)
				}
			}
			driveRequest(t, client, reviewer, r, 150*time.Second)
		}()
	}
	<-chaosDone
	chaosEnded := time.Now()
	wl.Wait()
	allDone := time.Now()
	var lastDone time.Time
	for _, r := range reqs {
		if r.doneAt.After(lastDone) {
			lastDone = r.doneAt
		}
	}
	last := time.Unix(0, lastRestart.Load())
	recovery := max(lastDone.Sub(last), 0)
	inFlight := 0
	for _, r := range reqs {
		if r.doneAt.After(last) {
			inFlight++
		}
	}
	t.Logf("chaos: %d requests open at the final kill (both replicas), %d still open when the first replica was back %s later; the last finished %s after that",
		openAtLast.Load(), inFlight, last.Sub(time.Unix(0, finalKillAt.Load())).Round(time.Millisecond), recovery.Round(time.Millisecond))
	if openAtLast.Load() == 0 {
		t.Errorf("no request was open at the final kill: the recovery was not tried")
	}
	t.Logf("chaos: %d kills (%d while tasks ran, %d times both replicas down), chaos over after %s; last restart to last request done: %s; %d calls retried on another replica",
		killsDone.Load(), midTask.Load(), bothDown.Load(), chaosEnded.Sub(began).Round(time.Millisecond), recovery.Round(time.Millisecond), client.retried)
	_ = allDone
	if int(killsDone.Load()) < kills {
		t.Errorf("only %d of %d kills happened", killsDone.Load(), kills)
	}
	byType := map[string]int{}
	for _, r := range reqs {
		byType[r.typ+"/"+r.channel]++
		if r.status != dsar.Completed {
			t.Errorf("request %s (%s, %s) ended %q, want completed", r.id, r.typ, r.channel, r.status)
		}
	}
	t.Logf("chaos: requests by type/channel: %v", byType)
	if recovery > 30*time.Second {
		t.Errorf("the last request completed %s after the last restart; want seconds", recovery)
	}
	for _, s := range client.errors5x {
		t.Errorf("5xx: %s", s)
	}

	// No effect twice, counted where the vendor counts it.
	dups := 0
	// Stripe: writes that took effect (not an Idempotency-Key replay, not
	// refused), by what they did.
	stripeEffects := map[string]int{}
	for _, w := range sf.Writes() {
		if w.Status == 200 && !w.Replayed {
			stripeEffects[w.Method+" "+w.Path+"?"+w.Form.Encode()]++
		}
	}
	for k, n := range stripeEffects {
		if n > 1 {
			dups++
			t.Errorf("Stripe: %s took effect %d times", strings.SplitN(k, "?", 2)[0], n)
		}
	}
	creemEffects := map[string]int{}
	for _, q := range cf.Requests() {
		if q.Method != http.MethodGet && q.Status < 300 {
			creemEffects[q.Method+" "+q.Path+"?"+q.Query.Encode()]++
		}
	}
	for k, n := range creemEffects {
		if n > 1 {
			dups++
			t.Errorf("Creem: %s took effect %d times", strings.SplitN(k, "?", 2)[0], n)
		}
	}
	// The application database: every row change, logged by triggers.
	var dbEffects, dbDup int
	if err := app.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE n > 1) FROM (
		SELECT count(*) AS n FROM chaos.effects GROUP BY tbl, op, old_row, new_row) x`).Scan(&dbEffects, &dbDup); err != nil {
		t.Fatal(err)
	}
	if dbDup != 0 {
		dups += dbDup
		t.Errorf("application database: %d row changes happened more than once", dbDup)
	}
	// The object store: an erased person's objects are gone, everyone
	// else's are all there.
	objectsDeleted := 0
	for _, r := range reqs {
		if r.userID == "" {
			continue
		}
		n := objectsOf(r.userID)
		if r.typ == "erasure" {
			objectsDeleted += objectsBefore[r.userID] - n
			if n != 0 {
				t.Errorf("erasure %s: %d of the person's objects left", r.id, n)
			}
		} else if n != objectsBefore[r.userID] {
			t.Errorf("%s %s: the person has %d objects, had %d", r.typ, r.id, n, objectsBefore[r.userID])
		}
	}
	// Emails and bot messages: none twice.
	emails := map[string]int{}
	for _, m := range mail.Emails() {
		emails[strings.Join(m.To, ",")+"\x00"+m.Subject+"\x00"+m.Text]++
	}
	for k, n := range emails {
		if n > 1 {
			dups++
			t.Errorf("email %q sent %d times", strings.Split(k, "\x00")[1], n)
		}
	}
	// The outbox holds one row per message Steward meant to send: more
	// messages than rows is a send repeated (the Bot API has no
	// idempotency key: internal/notify/outbox.go), more rows than distinct
	// messages a message enqueued twice.
	var tgRows int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE kind = $1`, "telegram.message").Scan(&tgRows); err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos: %d Telegram messages enqueued, %d sent", tgRows, len(bot.Messages()))
	messages := map[string]int{}
	for _, m := range bot.Messages() {
		messages[strconv.FormatInt(m.ChatID, 10)+"\x00"+m.Text]++
	}
	// A message enqueued once and sent twice is the window the outbox
	// documents (Telegram took it, the process died before recording
	// it): counted and reported, a failure only when the outbox rows show
	// a message enqueued twice or a message sent more than twice.
	resent := 0
	for k, n := range messages {
		if n > 1 {
			first, _, _ := strings.Cut(strings.Split(k, "\x00")[1], "\n")
			if n > 2 || tgRows != len(messages) {
				dups++
				t.Errorf("bot message %q sent %d times (%d enqueued, %d distinct)", first, n, tgRows, len(messages))
			} else {
				resent++
				t.Logf("chaos: bot message %q sent twice: enqueued once, the replica killed between Telegram's answer and recording it (internal/notify/outbox.go)", first)
			}
		}
	}
	t.Logf("chaos: %d bot messages re-sent after a kill in the documented window", resent)
	// Every person heard about their request's end.
	for _, r := range reqs {
		if r.id == "" {
			continue
		}
		heard := false
		if r.email != "" {
			for _, m := range mail.Emails() {
				heard = heard || slices.Contains(m.To, r.email) && strings.Contains(m.Subject, r.id)
			}
		} else {
			heard = len(bot.MessagesTo(r.tg)) > 0
		}
		if !heard {
			t.Errorf("%s %s (%s): the person was told nothing", r.typ, r.id, r.channel)
		}
	}
	// Every acknowledged consent write is in the ledger.
	var kept int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM consent_events WHERE id = ANY($1::uuid[])`, consentsAcked).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != len(consentsAcked) {
		t.Errorf("%d of %d acknowledged consent writes in the ledger", kept, len(consentsAcked))
	}
	t.Logf("chaos: effects: Stripe %d, Creem %d, application database %d row changes, %d objects deleted, %d emails, %d bot messages, %d consent writes; duplicates %d",
		len(stripeEffects), len(creemEffects), dbEffects, objectsDeleted, len(mail.Emails()), len(bot.Messages()), kept, dups)

	// The replicas' logs: an ERROR is a finding unless it is the expected
	// noise of a peer dying (a connection cut mid-call).
	for _, r := range replicas {
		r.kill()
		scanChaosLog(t, r.logFile)
	}

	// The audit chain verifies: sealed by a replica of the same
	// deployment, checked through the API and `steward audit verify`.
	fin := e.start()
	fin.seal()
	if v := fin.do("GET", "/v1/admin/audit/verify", e.keys["auditor"], nil); v.status != 200 || !bytes.Contains(v.body, []byte(`"ok":true`)) {
		t.Errorf("audit verify: %d %s", v.status, v.body)
	}
	if code, out, errs := runCLI(t, map[string]string{"DATABASE_URL": e.url, "STEWARD_AUDIT_SIGNING_KEY": e.cfg.AuditSigningKey}, "audit", "verify"); code != 0 || !strings.HasPrefix(out, "OK ") {
		t.Errorf("steward audit verify: %d %q %q", code, out, errs)
	}
	t.Logf("chaos: wall time %s", time.Since(began).Round(time.Millisecond))
}

// driveRequest takes a request to its end as staff would: approving what
// waits for approval, completing the manual tasks once the automated ones
// ended.
func driveRequest(t *testing.T, c *chaosClient, reviewer string, r *chaosRequest, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	defer r.done.Store(true)
	for {
		res := c.do("GET", "/v1/privacy-requests/"+r.id, reviewer, nil)
		var d dsar.Detail
		if res.status != 200 || json.Unmarshal(res.body, &d) != nil {
			t.Errorf("detail %s: %d %s", r.id, res.status, res.body)
			return
		}
		r.status = d.Status
		switch d.Status {
		case dsar.Completed, dsar.Failed, dsar.Denied, dsar.Canceled:
			r.doneAt = time.Now()
			if d.Status == dsar.Failed {
				for _, task := range d.Tasks {
					if task.Status == dsar.TaskFailed {
						t.Errorf("%s %s: task %s/%s failed: %s", r.typ, r.id, task.System, task.Dataset, task.Error)
					}
				}
			}
			return
		case dsar.AwaitingApproval:
			if a := c.do("POST", "/v1/privacy-requests/"+r.id+"/approve", reviewer, map[string]any{"note": "identity matches"}); a.status != 200 && a.status != 409 {
				t.Errorf("approve %s: %d %s", r.id, a.status, a.body)
			}
		case dsar.Paused:
			t.Errorf("%s %s paused: %s", r.typ, r.id, d.PauseReason)
			return
		case dsar.InProgress:
			// Staff complete the manual tasks once no automated one runs
			// (pending automated ones may wait for a manual one: a
			// connector that handed its erasure to staff goes first).
			busy := false
			for _, task := range d.Tasks {
				busy = busy || task.Mode == dsar.ModeAutomated && task.Status == dsar.TaskRunning
			}
			for _, task := range d.Tasks {
				if !busy && task.Mode == dsar.ModeManual && task.Status == dsar.TaskPending {
					if a := c.do("POST", "/v1/privacy-requests/"+r.id+"/tasks/"+task.ID+"/complete", reviewer, map[string]any{"note": "done in the vendor console"}); a.status != 200 && a.status != 409 {
						t.Errorf("complete task %s: %d %s", task.ID, a.status, a.body)
					}
				}
			}
		}
		if time.Now().After(deadline) {
			var tasks []string
			for _, task := range d.Tasks {
				tasks = append(tasks, fmt.Sprintf("%s/%s %s %s %s attempts=%d %s", task.System, task.Dataset, task.Operation, task.Mode, task.Status, task.Attempts, task.Error))
			}
			t.Errorf("%s %s stuck in %s after %s; tasks:\n%s", r.typ, r.id, d.Status, timeout, strings.Join(tasks, "\n"))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCode waits for the verification code emailed to addr.
func waitCode(t *testing.T, mail *resendtest.Server, addr string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, m := range mail.Emails() {
			if len(m.To) == 1 && m.To[0] == addr {
				if c := sixDigits.FindString(m.Text); c != "" {
					return c
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("no verification code emailed within %s", timeout)
	return ""
}

// installEffectLog logs every row change in the application database's
// schemas (app, bot) to chaos.effects: the connector-side count of what
// Steward did there.
func installEffectLog(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
		CREATE SCHEMA chaos;
		CREATE TABLE chaos.effects (id bigserial PRIMARY KEY, tbl text NOT NULL, op text NOT NULL, old_row jsonb, new_row jsonb);
		CREATE FUNCTION chaos.log() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			-- An update that changes nothing is no effect (a retried
			-- idempotent write); any other change is one.
			IF TG_OP = 'UPDATE' AND OLD IS NOT DISTINCT FROM NEW THEN RETURN NULL; END IF;
			INSERT INTO chaos.effects (tbl, op, old_row, new_row) VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP,
				CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
			RETURN NULL;
		END $$;`); err != nil {
		t.Fatalf("effect log: %v", err)
	}
	rows, err := pool.Query(ctx, `SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('app', 'bot')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) == 0 {
		t.Fatalf("application tables: %v (%d)", err, len(tables))
	}
	for _, tbl := range tables {
		if _, err := pool.Exec(ctx, `CREATE TRIGGER chaos_effects AFTER INSERT OR UPDATE OR DELETE ON `+tbl+` FOR EACH ROW EXECUTE FUNCTION chaos.log()`); err != nil {
			t.Fatalf("trigger on %s: %v", tbl, err)
		}
	}
}

// scanChaosLog reports a replica's ERROR lines. Those that speak of an
// effect lost or done twice fail the run; the rest are logged for the
// reader (a call cut by a peer's death is expected).
func scanChaosLog(t *testing.T, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	counts := map[string]int{}
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"level":"ERROR"`) {
			continue
		}
		var m struct {
			Msg string `json:"msg"`
		}
		_ = json.Unmarshal([]byte(line), &m)
		counts[m.Msg]++
		low := strings.ToLower(line)
		for _, bad := range []string{"twice", "duplicate", "panic"} {
			if strings.Contains(low, bad) {
				t.Errorf("%s: %s", filepath.Base(file), line)
				break
			}
		}
	}
	for msg, n := range counts {
		t.Logf("%s: %d× ERROR %q", filepath.Base(file), n, msg)
	}
}
