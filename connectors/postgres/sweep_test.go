package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// sweepCutoff is the cutoff of every sweep test: rows are placed a second
// either side of it (and on it, which is not before it, so not due).
var sweepCutoff = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// sweepDDL: events reference accounts (RESTRICT) and reach a person through
// their account and their email; threads reference themselves both ways
// (NO ACTION and RESTRICT) and are dated by a timestamp without time zone.
const sweepDDL = `
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, created_at timestamptz NOT NULL);
CREATE TABLE events (
    id bigint PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    email text,
    note text,
    ip text NOT NULL,
    happened_at timestamptz NOT NULL,
    day date NOT NULL,
    label text);
CREATE TABLE threads (
    id bigint PRIMARY KEY,
    parent_id bigint REFERENCES threads (id),
    restrict_parent bigint REFERENCES threads (id) ON DELETE RESTRICT,
    author_email text,
    body text,
    posted_at timestamp NOT NULL);
ALTER TABLE threads ALTER COLUMN body SET STORAGE PLAIN;
`

func sweepMap() *datamap.Map {
	f := func(names ...string) map[string]datamap.Field {
		out := map[string]datamap.Field{}
		for _, n := range names {
			out[n] = datamap.Field{Category: "user"}
		}
		return out
	}
	return &datamap.Map{Version: 1, Systems: map[string]datamap.System{"sw": {
		Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{
			"accounts": {Table: "accounts", Identities: []datamap.Identity{{Field: "id", Type: "user"}, {Field: "email", Type: "email"}},
				Fields: f("id", "email", "created_at")},
			"events": {Table: "events", Identities: []datamap.Identity{{Field: "email", Type: "email"}},
				References: []datamap.Reference{{Field: "account_id", To: "sw.accounts.id"}},
				Fields:     f("id", "account_id", "email", "note", "ip", "happened_at", "day", "label")},
			"threads": {Table: "threads", Identities: []datamap.Identity{{Field: "author_email", Type: "email"}},
				Fields: f("id", "parent_id", "restrict_parent", "author_email", "body", "posted_at")},
		},
	}}}
}

// sweepDB is a fresh database with four accounts (created long before the
// cutoff) and events rows of them: event g belongs to account 1 + g % 4 and
// happened a second before the cutoff (g % 3 = 0: due), on it (g % 3 = 1)
// or a second after it (g % 3 = 2). pad bytes of note spread the rows over
// more blocks.
func sweepDB(t *testing.T, events, pad int) (string, *pgxpool.Pool) {
	t.Helper()
	url, pool := newDB(t, "sw", sweepDDL)
	exec(t, pool, `
		INSERT INTO sw.accounts VALUES
		    (1, 'ann@example.com', $1::timestamptz - interval '2 years'), (2, 'bob@example.com', $1::timestamptz - interval '2 years'),
		    (3, 'cat@example.com', $1::timestamptz - interval '2 years'), (4, 'dan@example.com', $1::timestamptz - interval '2 years')`, sweepCutoff)
	exec(t, pool, `
		INSERT INTO sw.events
		SELECT g, 1 + g % 4, a.email, 'note ' || g || repeat('n', $3), '10.0.' || g % 250 || '.1',
		       $1::timestamptz + (g % 3 - 1) * interval '1 second', ($1::timestamptz + (g % 3 - 1) * interval '1 day')::date, 'label ' || g
		FROM generate_series(1, $2::int) g JOIN sw.accounts a ON a.id = 1 + g % 4`, sweepCutoff, events, pad)
	exec(t, pool, "ANALYZE sw.events")
	return url, pool
}

// exec runs one statement or fails the test.
func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func sweepConnector(t *testing.T, url string, mod func(*postgres.Config)) *postgres.Connector {
	t.Helper()
	cfg := postgres.Config{System: "sw", DSN: url, Schema: "sw", DataMap: staticMap(sweepMap())}
	if mod != nil {
		mod(&cfg)
	}
	return newConnector(t, cfg)
}

func sweepOf(dataset, ts string, fields []connectors.FieldPlan) connectors.SweepParams {
	return connectors.SweepParams{System: "sw", Dataset: dataset, Timestamp: ts, Cutoff: sweepCutoff, Fields: fields}
}

// progressLog collects the batches a sweep reports.
type progressLog struct {
	mu      sync.Mutex
	batches []connectors.SweepBatch
}

func (l *progressLog) record(_ context.Context, b connectors.SweepBatch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, b)
	return nil
}

func (l *progressLog) deleted() (n int64) {
	for _, b := range l.batches {
		n += b.Deleted
	}
	return n
}

func TestSweepDeletesRowsPastTheCutoff(t *testing.T) {
	ctx := context.Background()
	url, pool := sweepDB(t, 3000, 0)
	// A small batch makes the sweep walk several block ranges.
	c := sweepConnector(t, url, func(cfg *postgres.Config) { cfg.SweepBatch = 500 })
	due := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0")
	notDue := snapshot(t, pool, "SELECT * FROM sw.events WHERE id % 3 <> 0 ORDER BY id")
	p := sweepOf("events", "happened_at", nil) // no fields: delete
	var log progressLog
	p.Progress = log.record
	res, err := c.Sweep(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != int64(due) || res.Deleted != int64(due) || res.Held != 0 || res.Kept != 0 {
		t.Fatalf("sweep: %+v, want %d matched and deleted", res, due)
	}
	if n := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0"); n != 0 {
		t.Fatalf("%d rows a second past the cutoff left", n)
	}
	if got := snapshot(t, pool, "SELECT * FROM sw.events ORDER BY id"); got != notDue {
		t.Fatalf("rows on and after the cutoff changed")
	}
	if len(log.batches) < 2 || log.deleted() != res.Deleted {
		t.Fatalf("progress: %d batches deleting %d, want several adding up to %d", len(log.batches), log.deleted(), res.Deleted)
	}
	last := 0
	for i, b := range log.batches {
		n, err := strconv.Atoi(b.Cursor)
		if err != nil || n <= last {
			t.Fatalf("batch %d cursor %q does not move forward from %d", i, b.Cursor, last)
		}
		last = n
	}
	// A second sweep finds nothing due.
	again, err := c.Sweep(ctx, sweepOf("events", "happened_at", plan(connectors.ActionDelete, "id", "note")))
	if err != nil || again.Matched != 0 || again.Deleted != 0 {
		t.Fatalf("second sweep: %+v, %v", again, err)
	}
	// A date column: a date is its day's midnight (UTC), so rows dated the
	// cutoff's own day are due at noon; those of the day after are not.
	res, err = c.Sweep(ctx, connectors.SweepParams{System: "sw", Dataset: "events", Timestamp: "day", Cutoff: sweepCutoff, DryRun: true})
	if want := count(t, pool, "SELECT count(*) FROM sw.events WHERE day = $1::date", sweepCutoff); err != nil || res.Matched != int64(want) || want == 0 {
		t.Fatalf("dry run by day: %+v, %v; want the %d rows dated the cutoff's day", res, err, want)
	}
}

func TestSweepAnonymizes(t *testing.T) {
	ctx := context.Background()
	url, pool := sweepDB(t, 600, 0)
	c := sweepConnector(t, url, func(cfg *postgres.Config) { cfg.BatchSize = 50 })
	due := int64(count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0"))
	notDue := snapshot(t, pool, "SELECT * FROM sw.events WHERE id % 3 <> 0 ORDER BY id")
	dueIDs := snapshot(t, pool, "SELECT id, account_id, happened_at, day FROM sw.events WHERE id % 3 = 0 ORDER BY id")
	fields := []connectors.FieldPlan{retain("id"), retain("happened_at"), retain("day"),
		mask("email", connectors.StrategyKeyedHash, ""), mask("note", connectors.StrategyNull, ""),
		mask("ip", connectors.StrategyNull, ""),              // NOT NULL text: a keyed hash instead
		mask("label", connectors.StrategyPseudonym, ""),      // no subject in a sweep: a keyed hash
		mask("account_id", connectors.StrategyKeyedHash, "")} // a reference: kept, and said so
	p := sweepOf("events", "happened_at", fields)
	var log progressLog
	p.Progress = log.record
	res, err := c.Sweep(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != due || res.Anonymized != due || res.Deleted != 0 {
		t.Fatalf("anonymize: %+v, want %d matched and anonymized", res, due)
	}
	if res.Kept != due || !strings.Contains(res.Note, "account_id") {
		t.Fatalf("anonymize: kept %d (%q), want every due row reported keeping account_id", res.Kept, res.Note)
	}
	var anonymized int64
	for _, b := range log.batches {
		anonymized += b.Anonymized
	}
	if anonymized != due || len(log.batches) < 2 {
		t.Fatalf("progress: %d batches anonymizing %d, want several adding up to %d", len(log.batches), anonymized, due)
	}
	if n := count(t, pool, `SELECT count(*) FROM sw.events WHERE id % 3 = 0 AND email LIKE 'kh:%' AND note IS NULL
		AND ip LIKE 'kh:%' AND label LIKE 'kh:%'`); int64(n) != due {
		t.Fatalf("%d of %d due rows anonymized as planned", n, due)
	}
	if got := snapshot(t, pool, "SELECT id, account_id, happened_at, day FROM sw.events WHERE id % 3 = 0 ORDER BY id"); got != dueIDs {
		t.Fatalf("anonymized rows lost their retained fields")
	}
	if got := snapshot(t, pool, "SELECT * FROM sw.events WHERE id % 3 <> 0 ORDER BY id"); got != notDue {
		t.Fatalf("rows not due changed")
	}
	before := snapshot(t, pool, "SELECT * FROM sw.events ORDER BY id")
	again, err := c.Sweep(ctx, sweepOf("events", "happened_at", fields))
	if err != nil || again.Matched != due || again.Anonymized != 0 {
		t.Fatalf("second sweep: %+v, %v; want the same rows matched and none anonymized again", again, err)
	}
	if got := snapshot(t, pool, "SELECT * FROM sw.events ORDER BY id"); got != before {
		t.Fatalf("second sweep changed rows")
	}
}

func TestSweepSparesHeldSubjects(t *testing.T) {
	ctx := context.Background()
	url, pool := sweepDB(t, 1200, 0)
	var logged bytes.Buffer
	c := sweepConnector(t, url, func(cfg *postgres.Config) {
		cfg.SweepBatch = 200
		cfg.Log = slog.New(slog.NewTextHandler(&logged, nil))
	})
	// Ann is held by her email (her events reached through her account and
	// the email column), Cat by her account id.
	held := [][]connectors.Identity{{id("email", "ann@example.com")}, {id("user", "3")}}
	heldDue := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0 AND account_id IN (1, 3)")
	due := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0")
	heldBefore := snapshot(t, pool, "SELECT * FROM sw.events WHERE account_id IN (1, 3) ORDER BY id")
	p := sweepOf("events", "happened_at", plan(connectors.ActionDelete, "id", "email", "note"))
	p.Held = held
	res, err := c.Sweep(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != int64(due) || res.Held != int64(heldDue) || res.Deleted != int64(due-heldDue) {
		t.Fatalf("sweep: %+v, want %d matched, %d held, %d deleted", res, due, heldDue, due-heldDue)
	}
	if got := snapshot(t, pool, "SELECT * FROM sw.events WHERE account_id IN (1, 3) ORDER BY id"); got != heldBefore {
		t.Fatalf("held subjects' rows changed")
	}
	if n := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0 AND account_id NOT IN (1, 3)"); n != 0 {
		t.Fatalf("%d due rows of subjects not held left", n)
	}
	out := logged.String()
	if strings.Count(out, "retention sweep") != 1 || !strings.Contains(out, "held="+strconv.Itoa(heldDue)) {
		t.Fatalf("want one log line with the counts, got:\n%s", out)
	}
	if strings.Contains(out, "ann@") || strings.Contains(out, "example.com") {
		t.Fatalf("the log names a held subject:\n%s", out)
	}
}

func TestSweepDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	url, pool := sweepDB(t, 300, 0)
	before := snapshot(t, pool, "SELECT * FROM sw.events ORDER BY id")
	due := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0")
	heldDue := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0 AND account_id = 2")
	for _, readOnly := range []bool{false, true} {
		c := sweepConnector(t, url, func(cfg *postgres.Config) { cfg.ReadOnly = readOnly })
		for _, fields := range [][]connectors.FieldPlan{nil, {mask("email", connectors.StrategyKeyedHash, "")}} {
			p := sweepOf("events", "happened_at", fields)
			p.DryRun = true
			p.Held = [][]connectors.Identity{{id("email", "bob@example.com")}}
			p.Progress = func(context.Context, connectors.SweepBatch) error { t.Fatal("a dry run reported a batch"); return nil }
			res, err := c.Sweep(ctx, p)
			if err != nil {
				t.Fatalf("read-only %v: %v", readOnly, err)
			}
			if res.Matched != int64(due) || res.Held != int64(heldDue) || res.Deleted+res.Anonymized != 0 ||
				!strings.Contains(res.Note, strconv.Itoa(due-heldDue)) {
				t.Fatalf("read-only %v, %d fields: %+v; want %d matched, %d held, %d in the note", readOnly, len(fields), res, due, heldDue, due-heldDue)
			}
		}
		if readOnly {
			// A read-only connector cannot sweep for real.
			if _, err := c.Sweep(ctx, sweepOf("events", "happened_at", nil)); !errors.Is(err, connectors.ErrUnsupported) {
				t.Fatalf("read-only sweep: %v, want ErrUnsupported", err)
			}
		}
	}
	if got := snapshot(t, pool, "SELECT * FROM sw.events ORDER BY id"); got != before {
		t.Fatalf("a dry run changed rows")
	}
}

func TestSweepResumesAfterAFailedBatch(t *testing.T) {
	ctx := context.Background()
	// 400-byte notes: about 17 rows a block, so the table spans dozens of
	// block ranges of SweepBatch rows.
	url, pool := sweepDB(t, 900, 400)
	c := sweepConnector(t, url, func(cfg *postgres.Config) { cfg.SweepBatch = 40 })
	due := int64(count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0"))
	// Row 600 (due, two thirds into the table) cannot be deleted.
	if _, err := pool.Exec(ctx, `
		CREATE FUNCTION sw.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF OLD.id = 600 THEN RAISE EXCEPTION 'row 600 is busy'; END IF; RETURN OLD; END $$;
		CREATE TRIGGER refuse BEFORE DELETE ON sw.events FOR EACH ROW EXECUTE FUNCTION sw.refuse();`); err != nil {
		t.Fatal(err)
	}
	var first progressLog
	p := sweepOf("events", "happened_at", nil)
	p.Progress = first.record
	res, err := c.Sweep(ctx, p)
	if err == nil || !strings.Contains(err.Error(), "row 600 is busy") {
		t.Fatalf("sweep with a faulty row: %+v, %v; want the trigger's error", res, err)
	}
	if len(first.batches) < 2 || first.deleted() == 0 || first.deleted() >= due || res.Deleted != first.deleted() {
		t.Fatalf("first attempt: %d batches deleting %d (result %d) of %d; want part of the work committed and reported",
			len(first.batches), first.deleted(), res.Deleted, due)
	}
	if n := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0"); int64(n) != due-first.deleted() {
		t.Fatalf("%d due rows left, want %d", n, due-first.deleted())
	}
	if _, err := pool.Exec(ctx, "DROP TRIGGER refuse ON sw.events"); err != nil {
		t.Fatal(err)
	}
	// The retry resumes from the last committed batch; going over the
	// failed batch's range again is the point of the retry.
	var second progressLog
	p.Resume = first.batches[len(first.batches)-1].Cursor
	p.Progress = second.record
	res, err = c.Sweep(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if first.deleted()+res.Deleted != due || second.deleted() != res.Deleted {
		t.Fatalf("deleted %d + %d over two attempts, want %d", first.deleted(), res.Deleted, due)
	}
	if start, _ := strconv.Atoi(p.Resume); len(second.batches) == 0 || start == 0 {
		t.Fatalf("resume from %q in %d batches", p.Resume, len(second.batches))
	}
	if n := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0"); n != 0 {
		t.Fatalf("%d due rows left after the retry", n)
	}
	// A Progress that refuses stops the sweep after the batch it was told.
	stop := errors.New("stop here")
	if _, err := pool.Exec(ctx, "UPDATE sw.events SET happened_at = $1::timestamptz - interval '1 day' WHERE id % 3 = 1", sweepCutoff); err != nil {
		t.Fatal(err)
	}
	var calls int
	p = sweepOf("events", "happened_at", nil)
	p.Progress = func(context.Context, connectors.SweepBatch) error { calls++; return stop }
	if res, err = c.Sweep(ctx, p); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("sweep with a refusing Progress: %+v, %v after %d calls", res, err, calls)
	}
}

func TestSweepForeignKeys(t *testing.T) {
	ctx := context.Background()
	url, pool := sweepDB(t, 0, 0)
	c := sweepConnector(t, url, func(cfg *postgres.Config) { cfg.SweepBatch = 2 })
	// Ann's account is due but an event that is not due references it
	// (RESTRICT); Bob's is due and unreferenced; Cat's is not due.
	exec(t, pool, "UPDATE sw.accounts SET created_at = $1::timestamptz + interval '1 second' WHERE id = 3", sweepCutoff)
	exec(t, pool, "INSERT INTO sw.events VALUES (1, 1, 'ann@example.com', NULL, '10.0.0.1', $1::timestamptz + interval '1 day', $1::date, NULL)", sweepCutoff)
	res, err := c.Sweep(ctx, sweepOf("accounts", "created_at", nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 3 || res.Deleted != 2 || res.Kept != 1 || !strings.Contains(res.Note, "events") {
		t.Fatalf("accounts: %+v, want 3 matched, 2 deleted (Bob, Dan), 1 kept (Ann) with a note naming events", res)
	}
	if got := snapshot(t, pool, "SELECT id FROM sw.accounts ORDER BY id"); got != "[[1] [3]]" {
		t.Fatalf("accounts left: %s, want Ann (referenced) and Cat (not due)", got)
	}

	// Threads reference each other. 3 kB bodies put two rows in a block, so
	// the chain 1 <- 2 <- … <- 6 (NO ACTION) spans three block ranges and
	// goes leaves first over several walks; 7 is kept by its reply 8, which
	// is not due (RESTRICT); 9 <- 10 (RESTRICT) go; 11 replies to itself.
	exec(t, pool, `
		INSERT INTO sw.threads (id, parent_id, restrict_parent, body, posted_at)
		SELECT g, CASE WHEN g BETWEEN 2 AND 6 THEN g - 1 WHEN g = 11 THEN 11 END,
		       CASE g WHEN 8 THEN 7 WHEN 10 THEN 9 END, repeat('b', 3000),
		       ($1::timestamptz AT TIME ZONE 'UTC') + CASE WHEN g = 8 THEN interval '1 second' ELSE interval '-1 second' END
		FROM generate_series(1, 11) g`, sweepCutoff)
	if n := count(t, pool, "SELECT count(DISTINCT (ctid::text::point)[0]) FROM sw.threads"); n < 5 {
		t.Fatalf("threads span %d blocks, want the chain spread over several", n)
	}
	res, err = c.Sweep(ctx, sweepOf("threads", "posted_at", nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 10 || res.Deleted != 9 || res.Kept != 1 {
		t.Fatalf("threads: %+v, want 10 matched, 9 deleted, 1 kept", res)
	}
	if got := snapshot(t, pool, "SELECT id FROM sw.threads ORDER BY id"); got != "[[7] [8]]" {
		t.Fatalf("threads left: %s, want 7 and its reply 8", got)
	}
}

func TestSweepRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	url, pool := sweepDB(t, 300, 0)
	c := sweepConnector(t, url, nil)
	before := snapshot(t, pool, "SELECT * FROM sw.events ORDER BY id")
	for name, p := range map[string]connectors.SweepParams{
		"unknown dataset":      sweepOf("nope", "happened_at", nil),
		"other system":         {System: "other", Dataset: "events", Timestamp: "happened_at", Cutoff: sweepCutoff},
		"text timestamp":       sweepOf("events", "label", nil),
		"missing timestamp":    sweepOf("events", "nope", nil),
		"no timestamp":         sweepOf("events", "", nil),
		"zero cutoff":          {System: "sw", Dataset: "events", Timestamp: "happened_at"},
		"unmapped field":       sweepOf("events", "happened_at", plan(connectors.ActionDelete, "secret")),
		"unknown strategy":     sweepOf("events", "happened_at", []connectors.FieldPlan{mask("email", "shred", "")}),
		"bad resume cursor":    {System: "sw", Dataset: "events", Timestamp: "happened_at", Cutoff: sweepCutoff, Resume: "(1,2)"},
		"dry run, bad cutoff":  {System: "sw", Dataset: "events", Timestamp: "happened_at", DryRun: true},
		"dry run, text column": {System: "sw", Dataset: "events", Timestamp: "ip", Cutoff: sweepCutoff, DryRun: true},
	} {
		res, err := c.Sweep(ctx, p)
		var ce *connectors.Error
		if err == nil || !errors.As(err, &ce) || ce.Retryable {
			t.Errorf("%s: %+v, %v; want a permanent error", name, res, err)
			continue
		}
		if name == "text timestamp" && !strings.Contains(err.Error(), "sw.events.label") {
			t.Errorf("%s: %v; want the field named system.dataset.field", name, err)
		}
	}
	if got := snapshot(t, pool, "SELECT * FROM sw.events ORDER BY id"); got != before {
		t.Fatalf("a refused sweep changed rows")
	}
}

func TestSweepLockedRowFailsRetryably(t *testing.T) {
	ctx := context.Background()
	url, pool := sweepDB(t, 900, 400)
	c := sweepConnector(t, url, func(cfg *postgres.Config) { cfg.SweepBatch = 40; cfg.LockTimeout = 200 * time.Millisecond })
	due := int64(count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0"))
	// The application holds due row 450 (mid-table) in a long transaction.
	app, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Rollback(ctx) //nolint:errcheck
	if _, err := app.Exec(ctx, "SELECT 1 FROM sw.events WHERE id = 450 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	var first progressLog
	p := sweepOf("events", "happened_at", nil)
	p.Progress = first.record
	_, err = c.Sweep(ctx, p)
	if retry, _ := connectors.Classify(err); err == nil || !retry {
		t.Fatalf("sweep over a locked row: %v; want a retryable error", err)
	}
	if len(first.batches) == 0 || first.deleted() == 0 {
		t.Fatalf("no batch committed before the locked row")
	}
	if err := app.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	p.Resume = first.batches[len(first.batches)-1].Cursor
	p.Progress = nil
	res, err := c.Sweep(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if first.deleted()+res.Deleted != due || res.Matched != due-first.deleted() {
		t.Fatalf("deleted %d + %d (retry matched %d) over two attempts, want %d", first.deleted(), res.Deleted, res.Matched, due)
	}
	if n := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0"); n != 0 {
		t.Fatalf("%d due rows left after the retry", n)
	}
}

// A record to anonymize whose identifying field is a NOT NULL reference
// (events.account_id -> accounts) cannot be separated from the person while
// it exists: the sweep deletes the due records instead and says why, and
// the rows not yet due stay as they were.
func TestSweepDeletesWhatCannotBeAnonymized(t *testing.T) {
	ctx := context.Background()
	url, pool := sweepDB(t, 300, 0)
	c := sweepConnector(t, url, nil)
	due := int64(count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0"))
	notDue := snapshot(t, pool, "SELECT * FROM sw.events WHERE id % 3 <> 0 ORDER BY id")
	fields := []connectors.FieldPlan{retain("id"), retain("happened_at"), retain("day"), mask("note", connectors.StrategyNull, ""),
		mask("account_id", connectors.StrategyNull, "")}
	res, err := c.Sweep(ctx, sweepOf("events", "happened_at", fields))
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != due || res.Deleted != due || res.Anonymized != 0 || !strings.Contains(res.Note, "account_id") || !strings.Contains(res.Note, "deleted instead") {
		t.Fatalf("sweep: %+v, want the %d due rows deleted instead, with the reason", res, due)
	}
	if n := count(t, pool, "SELECT count(*) FROM sw.events WHERE id % 3 = 0"); n != 0 {
		t.Fatalf("%d due rows left", n)
	}
	if got := snapshot(t, pool, "SELECT * FROM sw.events WHERE id % 3 <> 0 ORDER BY id"); got != notDue {
		t.Fatal("rows not due changed")
	}
}
