package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/demo"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/testpeer"
)

// TestDemoDeployment sets up the demo deployment as scripts/run.sh does,
// through the steward-demo commands (internal/demo): `seed` creates the
// application database and fills it and the object store (twice: it must
// be re-runnable), `peers` serves the Stripe and Creem fakes and the Resend
// and Telegram stand-ins on the given addresses and links every web person to their
// customers, `connectors` writes the connectors file. Then Steward,
// configured by that file, answers access requests for the demo people
// from every connector kind.
func TestDemoDeployment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addrs := freeAddrs(t, 4)
	stripeAddr, creemAddr, resendAddr, botAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	e := newEnv(t, map[string]string{
		"STEWARD_RESEND_API_KEY": "re_demo", "STEWARD_RESEND_BASE_URL": "http://" + resendAddr + "/",
		"STEWARD_EMAIL_FROM": "Privacy <privacy@example.com>",
	})
	// The application database does not exist yet: seed creates it, on
	// the same server as Steward's, as make run does.
	appDB := fmt.Sprintf("steward_demo_t_%d", time.Now().UnixNano())
	appURL, err := demo.WithDatabaseName(e.url, appDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropDatabase(t, appDB) })
	s3srv := testpeer.S3(t)
	runDemo := func(ctx context.Context, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := demo.Run(ctx, args, &out, &errb, func(string) string { return "" })
		return out.String(), errb.String(), code
	}

	const people = 25
	seedArgs := []string{"seed", "--database", appURL, "--people", strconv.Itoa(people), "--s3-endpoint", s3srv.Endpoint,
		"--s3-access-key", s3srv.AccessKey, "--s3-secret-key", s3srv.SecretKey}
	out, errs, code := runDemo(ctx, seedArgs...)
	if code != 0 {
		t.Fatalf("demo seed: exit %d\n%s", code, errs)
	}
	seeded := parseEnvLines(out)
	for _, k := range []string{"DEMO_EMAIL", "DEMO_USER_ID", "DEMO_TG", "DEMO_APP_DATABASE_URL", "DEMO_OBJECTS"} {
		if seeded[k] == "" {
			t.Fatalf("demo seed printed no %s:\n%s", k, out)
		}
	}
	email, userID, tg := seeded["DEMO_EMAIL"], seeded["DEMO_USER_ID"], seeded["DEMO_TG"]
	pool, err := pgxpool.New(ctx, appURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	client := s3srv.Client()
	listKeys := func(prefix string) []string {
		t.Helper()
		var keys []string
		pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(demo.Bucket), Prefix: aws.String(prefix)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
		}
		slices.Sort(keys)
		return keys
	}
	// userKeys are the object keys the app database names for the person.
	userKeys := func() []string {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT a.object_key FROM app.job_assets a JOIN app.generation_jobs j ON j.id = a.job_id
			WHERE j.user_id = $1 ORDER BY 1`, userID)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	checkSeeded := func() {
		t.Helper()
		if n := count("SELECT count(*) FROM app.users"); n != people {
			t.Errorf("app.users: %d people, want %d", n, people)
		}
		if n := count("SELECT count(*) FROM bot.tg_users"); n != people {
			t.Errorf("bot.tg_users: %d people, want %d", n, people)
		}
		if n := count("SELECT count(*) FROM app.users WHERE id = $1 AND email = $2", userID, email); n != 1 {
			t.Errorf("the demo web person %s <%s> is not in app.users", userID, email)
		}
		if n := count("SELECT count(*) FROM bot.tg_users WHERE tg_id = $1::bigint", tg); n != 1 {
			t.Errorf("the demo bot person %s is not in bot.tg_users", tg)
		}
		mine := append(listKeys("uploads/"+userID+"/"), append(listKeys("masks/"+userID+"/"), listKeys("generated/"+userID+"/")...)...)
		slices.Sort(mine)
		want := userKeys()
		if len(listKeys("uploads/"+userID+"/")) == 0 || len(listKeys("generated/"+userID+"/")) == 0 || !slices.Equal(mine, want) {
			t.Errorf("the demo person's objects:\n got %v\nwant %v", mine, want)
		}
		if all, n := listKeys(""), count("SELECT count(*) FROM app.job_assets"); len(all) != n || strconv.Itoa(n) != seeded["DEMO_OBJECTS"] {
			t.Errorf("bucket holds %d objects, job_assets names %d, seed reported %s", len(all), n, seeded["DEMO_OBJECTS"])
		}
		obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(demo.Bucket), Key: aws.String(want[0])})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(obj.Body)
		_ = obj.Body.Close()
		if body, _ := demo.Object(want[0]); !bytes.Equal(b, body) || len(b) == 0 || len(b) > 4<<10 {
			t.Errorf("%s: %d bytes stored, not the small generated image", want[0], len(b))
		}
	}
	checkSeeded()

	// Seeding again starts afresh: a stray object and an edited person
	// are gone, everything else is as before.
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(demo.Bucket), Key: aws.String("uploads/stray/x.png"),
		Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE app.users SET email = 'changed@example.com' WHERE id = $1", userID); err != nil {
		t.Fatal(err)
	}
	pool.Reset() // the schemas are dropped under its connections
	out2, errs, code := runDemo(ctx, seedArgs...)
	if code != 0 {
		t.Fatalf("demo seed, again: exit %d\n%s", code, errs)
	}
	if again := parseEnvLines(out2); again["DEMO_EMAIL"] != email || again["DEMO_TG"] != tg || again["DEMO_OBJECTS"] != seeded["DEMO_OBJECTS"] {
		t.Errorf("a second seed differs:\n%s\nthen\n%s", out, out2)
	}
	if n := len(listKeys("uploads/stray/")); n != 0 {
		t.Errorf("the stray object survived a second seed")
	}
	checkSeeded()

	// The peers, on the addresses given.
	dir := t.TempDir()
	ready, mailLog, chatLog := filepath.Join(dir, "peers.ready"), filepath.Join(dir, "mail.log"), filepath.Join(dir, "telegram.log")
	pctx, stopPeers := context.WithCancel(ctx)
	type result struct {
		out, errs string
		code      int
	}
	peersDone := make(chan result, 1)
	go func() {
		o, e, c := runDemo(pctx, "peers", "--database", appURL, "--stripe", stripeAddr, "--creem", creemAddr, "--resend", resendAddr,
			"--telegram", botAddr, "--ready-file", ready, "--mail-log", mailLog, "--chat-log", chatLog)
		peersDone <- result{o, e, c}
	}()
	t.Cleanup(stopPeers)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			break
		}
		select {
		case r := <-peersDone:
			t.Fatalf("demo peers exited %d before it was ready:\n%s%s", r.code, r.out, r.errs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("demo peers not ready within 60s")
		}
	}
	rb, _ := os.ReadFile(ready)
	peers := parseEnvLines(string(rb))
	if peers["DEMO_STRIPE_URL"] != "http://"+stripeAddr || peers["DEMO_CREEM_URL"] != "http://"+creemAddr || peers["DEMO_RESEND_URL"] != "http://"+resendAddr+"/" {
		t.Fatalf("ready file names other addresses:\n%s", rb)
	}
	if peers["DEMO_TELEGRAM_URL"] != "http://"+botAddr || peers["DEMO_TELEGRAM_TOKEN"] == "" {
		t.Fatalf("ready file names no Telegram stand-in:\n%s", rb)
	}
	// Steward sends bot messages to the stand-in, as make run configures it.
	e.cfg.TelegramBotToken, e.cfg.TelegramAPIURL = peers["DEMO_TELEGRAM_TOKEN"], peers["DEMO_TELEGRAM_URL"]

	// Every web person is linked to a Stripe and a Creem customer that
	// exist, with their details.
	if n := count("SELECT count(*) FROM app.users WHERE stripe_customer_id IS NULL OR creem_customer_id IS NULL"); n != 0 {
		t.Errorf("%d web people not linked to both providers", n)
	}
	var cus, ccus string
	if err := pool.QueryRow(ctx, "SELECT stripe_customer_id, creem_customer_id FROM app.users WHERE id = $1", userID).Scan(&cus, &ccus); err != nil {
		t.Fatal(err)
	}
	getJSON := func(rawURL string, header ...string) map[string]any {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", rawURL, res.StatusCode, err)
		}
		return m
	}
	stripeAuth := []string{"Authorization", "Bearer " + peers["DEMO_STRIPE_KEY"]}
	c := getJSON("http://"+stripeAddr+"/v1/customers/"+cus, stripeAuth...)
	if c["email"] != email || c["address"] == nil || c["name"] == nil || fmt.Sprint(c["metadata"]) != fmt.Sprint(map[string]any{"user_id": userID}) {
		t.Errorf("Stripe customer %s: %v", cus, c)
	}
	for _, path := range []string{"/v1/payment_methods?type=card&customer=", "/v1/charges?customer="} {
		if l := getJSON("http://"+stripeAddr+path+cus, stripeAuth...); len(l["data"].([]any)) == 0 {
			t.Errorf("%s%s: none", path, cus)
		}
	}
	creemAuth := []string{"x-api-key", peers["DEMO_CREEM_KEY"]}
	if cc := getJSON("http://"+creemAddr+"/v1/customers?customer_id="+ccus, creemAuth...); cc["email"] != email {
		t.Errorf("Creem customer %s: %v", ccus, cc)
	}
	if l := getJSON("http://"+creemAddr+"/v1/transactions/search?customer_id="+ccus, creemAuth...); fmt.Sprint(l["items"]) == "[]" || l["items"] == nil {
		t.Errorf("Creem transactions of %s: %v", ccus, l)
	}

	// The connectors file, and Steward reaching every system through it.
	file := filepath.Join(dir, "connectors.yaml")
	if _, errs, code := runDemo(ctx, "connectors", "--database", appURL, "--s3-endpoint", s3srv.Endpoint, "--s3-access-key", s3srv.AccessKey,
		"--s3-secret-key", s3srv.SecretKey, "--stripe-url", peers["DEMO_STRIPE_URL"], "--creem-url", peers["DEMO_CREEM_URL"], "--out", file); code != 0 {
		t.Fatalf("demo connectors: exit %d\n%s", code, errs)
	}
	specs, err := config.LoadConnectors(file, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 5 || specs["bot_db"].Postgres == nil || specs["bot_db"].Postgres.Schema != "bot" || specs["creem"].Creem.WebhookSecret == "" {
		t.Fatalf("connectors file: %+v", specs)
	}
	e.cfg.ConnectorsFile = file
	g := &requestsRig{t: t, e: e, r: e.start()}
	access := func(subject string) map[string]int {
		t.Helper()
		created := g.create(e.keys["reviewer"], map[string]any{"type": "access", "subject": subject, "region": "DE", "channel": "staff",
			"note": "demo", "identity_verified": true}, 201)
		id := created.Request.ID
		g.waitFor(id, dsar.InProgress, dsar.Completed)
		g.finishManual(id)
		d := g.waitFor(id, dsar.Completed)
		// Records disclosed per system and dataset, from the task results.
		got := map[string]int{}
		for _, task := range d.Tasks {
			if task.Mode != dsar.ModeAutomated {
				continue
			}
			var res struct {
				Records int `json:"records"`
			}
			if err := json.Unmarshal(task.Result, &res); err != nil || task.Status != dsar.TaskSucceeded {
				t.Errorf("%s/%s: %s %s (%v)", task.System, task.Dataset, task.Status, task.Error, err)
			}
			got[task.System+"/"+task.Dataset] += res.Records
		}
		return got
	}
	web := access("email:" + email)
	for _, ds := range []string{"app_db/users", "object_store/uploads", "object_store/generated", "stripe/customers", "stripe/payment_methods",
		"stripe/charges", "creem/customers", "creem/transactions"} {
		if web[ds] == 0 {
			t.Errorf("access for %s disclosed no %s records (all: %v)", email, ds, web)
		}
	}
	if n, want := web["object_store/uploads"]+web["object_store/masks"]+web["object_store/generated"], len(userKeys()); n != want {
		t.Errorf("%d objects disclosed, the person has %d", n, want)
	}
	if bot := access("tg:" + tg); bot["bot_db/tg_users"] != 1 {
		t.Errorf("access for tg:%s: %v", tg, bot)
	}

	// Emails reach the Resend stand-in, which keeps them in the mail log.
	if _, err := g.r.app.worker.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(mailLog); !strings.Contains(string(b), "to "+email) {
		t.Errorf("mail log has no email to %s:\n%s", email, b)
	}
	// The bot person was told in Telegram: the stand-in keeps the messages.
	if b, _ := os.ReadFile(chatLog); strings.Count(string(b), "bot message to chat "+tg+"\n") != 2 ||
		!strings.Contains(string(b), "We have completed your privacy request") {
		t.Errorf("chat log lacks the acknowledgment and completion sent to %s:\n%s", tg, b)
	}

	// Stopping the peers stops the fakes.
	stopPeers()
	select {
	case r := <-peersDone:
		if r.code != 0 {
			t.Errorf("demo peers: exit %d\n%s", r.code, r.errs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo peers did not stop")
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			_ = c.Close()
			t.Errorf("%s still accepts connections after demo peers stopped", a)
		}
	}
}

// freeAddrs returns n loopback addresses nobody listens on now.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}

func parseEnvLines(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m
}

func dropDatabase(t *testing.T, name string) {
	conn, err := pgx.Connect(context.Background(), dbtest.AdminURL())
	if err != nil {
		t.Logf("drop %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Logf("drop %s: %v", name, err)
	}
}
