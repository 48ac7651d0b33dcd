// Package refapp builds the application databases of Steward's two reference
// products, as policies/data/datamap.yaml describes them: the web product's
// app_db (Nano Banana Pro) and the Telegram bot's bot_db (Bananapics).
//
// Steward's Postgres connector acts on databases it does not own. Its tests,
// the benchmarks and the `make run` demo all need the same realistic
// application databases to act on: real foreign keys with the varied ON
// DELETE actions a real application has, the indexes per-subject lookups
// rely on, and many people whose rows reach every table. One definition here
// keeps them alike, and its test checks the schema against the data map, so
// a map change the schema does not follow fails a test rather than a demo.
//
// CreateSchema creates a product's tables in a schema of the caller's
// choosing; Generate fills them with people made deterministically from a
// seed and reports, per person, the identities to search by and how many
// rows of each table are theirs.
package refapp

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed schema/web.sql
var webSQL string

//go:embed schema/bot.sql
var botSQL string

// Product is a reference product: Web (system app_db) or Bot (system bot_db).
type Product string

// The reference products, named as in policies/data/products.json.
const (
	Web Product = "web"
	Bot Product = "bot"
)

// tableSpec is a table and the columns Generate fills, in the order its
// generator supplies values. Tables are listed parents first, the order
// rows must be inserted in for the foreign keys to hold.
type tableSpec struct {
	name string
	cols []string
}

// crossPerson are the tables whose rows point at another person's rows;
// they are inserted once everyone is committed (see generator.insert).
var crossPerson = map[string]bool{"tg_referrals": true}

var webTables = []tableSpec{
	{"users", []string{"id", "name", "email", "email_verified", "image", "language", "stripe_customer_id", "creem_customer_id", "role", "banned", "ban_reason", "created_at", "updated_at"}},
	{"accounts", []string{"id", "user_id", "provider_id", "account_id", "access_token", "refresh_token", "id_token", "password", "scope", "created_at", "updated_at"}},
	{"sessions", []string{"id", "user_id", "token", "ip_address", "user_agent", "impersonated_by", "expires_at", "created_at", "updated_at"}},
	{"verifications", []string{"id", "identifier", "value", "expires_at", "created_at"}},
	{"impersonation_logs", []string{"id", "user_id", "admin_user_id", "reason", "ip_address", "started_at", "ended_at"}},
	{"risk_flags", []string{"id", "user_id", "kind", "reason", "score", "ip_address", "created_at", "resolved_at"}},
	{"visitors", []string{"id", "user_id", "ip_address", "user_agent", "first_seen_at", "last_seen_at"}},
	{"usage_quotas", []string{"id", "user_id", "visitor_id", "period_start", "uploads_used", "generations_used", "updated_at"}},
	{"subscriptions", []string{"id", "user_id", "provider", "provider_subscription_id", "plan", "status", "current_period_end", "canceled_at", "created_at"}},
	{"payments", []string{"id", "user_id", "provider", "provider_payment_id", "checkout_session_id", "amount", "currency", "status", "refunded_amount", "created_at"}},
	{"invoices", []string{"id", "user_id", "payment_id", "number", "provider_invoice_id", "billing_name", "billing_email", "billing_address", "tax_id", "amount", "tax_amount", "currency", "pdf_url", "issued_at"}},
	{"billing_profiles", []string{"id", "user_id", "full_name", "company_name", "address_line1", "address_line2", "city", "postal_code", "country", "vat_id", "created_at", "updated_at"}},
	{"credit_balances", []string{"user_id", "balance", "updated_at"}},
	{"credit_grants", []string{"id", "user_id", "payment_id", "pack", "credits", "remaining", "source", "expires_at", "created_at"}},
	{"generation_jobs", []string{"id", "user_id", "visitor_id", "batch_id", "prompt", "negative_prompt", "style_tags", "seed", "parameters", "output_format", "output_count", "model", "provider_request_id", "status", "safety_flags", "error", "runtime_ms", "created_at", "completed_at"}},
	{"job_assets", []string{"id", "job_id", "kind", "object_key", "signed_url", "width", "height", "bytes", "created_at"}},
	{"credit_transactions", []string{"id", "user_id", "delta", "balance_after", "reason", "grant_id", "job_id", "payment_id", "created_at"}},
	{"disputes", []string{"id", "user_id", "payment_id", "provider_dispute_id", "reason", "status", "amount", "evidence", "created_at", "closed_at"}},
	{"migration_records", []string{"id", "user_id", "legacy_user_id", "source", "details", "migrated_at"}},
	{"support_tickets", []string{"id", "user_id", "email", "subject", "body", "status", "created_at", "resolved_at"}},
	{"support_messages", []string{"id", "ticket_id", "author", "body", "created_at"}},
	{"newsletter_preferences", []string{"id", "user_id", "email", "subscribed", "topics", "source", "consented_at", "unsubscribed_at", "updated_at"}},
	{"survey_responses", []string{"id", "user_id", "survey", "answers", "created_at"}},
}

var botTables = []tableSpec{
	{"tg_users", []string{"tg_id", "username", "first_name", "last_name", "language", "credits_balance", "is_blocked", "created_at", "updated_at"}},
	{"tg_generations", []string{"id", "tg_user_id", "prompt", "model", "parameters", "reference_file_ids", "reference_urls", "wavespeed_request_id", "result_url", "status", "error", "credits_spent", "created_at", "completed_at"}},
	{"tg_payments", []string{"id", "tg_user_id", "telegram_payment_charge_id", "invoice_payload", "stars_amount", "credits", "status", "refunded_at", "created_at"}},
	{"tg_credit_transactions", []string{"id", "tg_user_id", "delta", "balance_after", "reason", "generation_id", "payment_id", "created_at"}},
	{"tg_referrals", []string{"id", "referrer_tg_id", "referee_tg_id", "bonus_credits", "created_at"}},
	{"tg_broadcast_optouts", []string{"tg_user_id", "opted_out_at", "source"}},
	{"tg_request_logs", []string{"request_id", "tg_user_id", "update_type", "latency_ms", "error", "created_at"}},
}

func (p Product) spec() ([]tableSpec, string, error) {
	switch p {
	case Web:
		return webTables, webSQL, nil
	case Bot:
		return botTables, botSQL, nil
	}
	return nil, "", fmt.Errorf("refapp: unknown product %q (want %q or %q)", p, Web, Bot)
}

// Tables returns the product's tables, parents before the tables that
// reference them (the order to insert in; reverse it to delete). It is nil
// for an unknown product.
func Tables(p Product) []string {
	specs, _, _ := p.spec()
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		out = append(out, s.name)
	}
	return out
}

// Execer is what CreateSchema needs of a database handle: a transaction.
// *pgxpool.Pool, *pgx.Conn and pgx.Tx (as a savepoint) all satisfy it.
type Execer interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// CreateSchema creates the Postgres schema if it is missing and the
// product's tables in it, in one transaction. It is idempotent: tables that
// already exist are left as they are.
func CreateSchema(ctx context.Context, db Execer, schema string, product Product) error {
	_, ddl, err := product.spec()
	if err != nil {
		return err
	}
	if schema == "" {
		return errors.New("refapp: schema name is empty")
	}
	ident := pgx.Identifier{schema}.Sanitize()
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("refapp: create schema %s: begin: %w", ident, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// SET LOCAL: the search path reverts at commit, so a pooled connection
	// does not keep pointing at the reference schema.
	for _, stmt := range []string{"CREATE SCHEMA IF NOT EXISTS " + ident, "SET LOCAL search_path TO " + ident, ddl} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("refapp: create %s schema %s: %w", product, ident, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("refapp: create %s schema %s: commit: %w", product, ident, err)
	}
	return nil
}

// TableCount returns the number of rows in schema.table.
func TableCount(ctx context.Context, pool *pgxpool.Pool, schema, table string) (int, error) {
	var n int
	q := "SELECT count(*) FROM " + pgx.Identifier{schema, table}.Sanitize()
	if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("refapp: count %s.%s: %w", schema, table, err)
	}
	return n, nil
}

// Options says whom Generate makes. Per-person counts are maxima: each
// person gets between 1 and that many rows (the first person exactly that
// many); zero means the default given in brackets.
type Options struct {
	// People is how many people to generate.
	People int
	// Seed makes the output deterministic: the same seed, options and Now
	// give the same rows.
	Seed int64
	// Now is the end of the two years the timestamps are spread over; zero
	// means the current time.
	Now time.Time
	// IDOffset is added to each person's index before every unique value
	// (ids, emails, Telegram ids, provider ids) is derived from it, so calls
	// with disjoint index ranges can fill the same schema.
	IDOffset int

	// Web.
	Sessions          int // sign-in sessions [3], plus one impersonation session
	Visitors          int // visitor ids [2]
	QuotaPeriods      int // monthly usage-quota rows [3]
	Payments          int // payments [3]
	Jobs              int // generation jobs [6]
	AssetsPerJob      int // job assets per job [3]
	Tickets           int // support tickets [2]
	MessagesPerTicket int // support messages per ticket [4]
	Surveys           int // survey responses [2]

	// Bot.
	Generations  int // image generations [8]
	StarPayments int // Telegram Stars payments [3]
	RequestLogs  int // request-log rows [12]
}

// maxPerPerson bounds every per-person count, so a person's row numbers
// (jobs times assets) fit the row bits of an id key.
const maxPerPerson = 100

// chunkPeople is how many people a worker generates and copies at a time:
// big enough that round trips do not matter, small enough to bound memory
// and to share the work evenly.
const chunkPeople = 500

// Person is one generated person: the identities a privacy request would
// name them by, and how many rows of each table are theirs.
type Person struct {
	// Index is the person's number with IDOffset added; their unique values
	// are derived from it (it is the number in their email).
	Index int

	// Web (empty for Bot).
	UserID           string
	Email            string
	StripeCustomerID string // empty if they never paid through Stripe
	CreemCustomerID  string // empty if they never paid through Creem
	OAuthProvider    string // "google" or "github"; empty with only a password
	OAuthAccountID   string
	VisitorID        string // the visitor id from before sign-up

	// Bot (zero for Web).
	TelegramID int64
	Username   string // empty if they have no Telegram username

	// Rows is table -> rows that belong to this person (tg_referrals rows
	// count for both referrer and referee). Tables with none are absent.
	Rows map[string]int
}

// Generate inserts opt.People people into the product's tables in schema
// (made by CreateSchema) and returns them in order.
//
// It inserts over several connections at once, each in its own transaction,
// and commits only when all have inserted their share; a failure before
// that leaves the schema as it was. (A failed commit, or a failure in the
// last step, inserting the bot's referrals, can leave part of the people.)
func Generate(ctx context.Context, pool *pgxpool.Pool, schema string, product Product, opt Options) ([]Person, error) {
	specs, _, err := product.spec()
	if err != nil {
		return nil, err
	}
	if schema == "" {
		return nil, errors.New("refapp: schema name is empty")
	}
	if opt, err = opt.withDefaults(); err != nil {
		return nil, err
	}
	g := newGenerator(product, opt)
	if err := g.insert(ctx, pool, schema, specs); err != nil {
		return nil, err
	}
	return g.people, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.People < 0 || o.IDOffset < 0 {
		return o, fmt.Errorf("refapp: People (%d) and IDOffset (%d) must not be negative", o.People, o.IDOffset)
	}
	if o.IDOffset+o.People > maxPeople {
		return o, fmt.Errorf("refapp: IDOffset+People must stay below %d", maxPeople)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC().Truncate(time.Microsecond)
	for _, c := range []struct {
		name string
		v    *int
		def  int
	}{
		{"Sessions", &o.Sessions, 3}, {"Visitors", &o.Visitors, 2}, {"QuotaPeriods", &o.QuotaPeriods, 3},
		{"Payments", &o.Payments, 3}, {"Jobs", &o.Jobs, 6}, {"AssetsPerJob", &o.AssetsPerJob, 3},
		{"Tickets", &o.Tickets, 2}, {"MessagesPerTicket", &o.MessagesPerTicket, 4}, {"Surveys", &o.Surveys, 2},
		{"Generations", &o.Generations, 8}, {"StarPayments", &o.StarPayments, 3}, {"RequestLogs", &o.RequestLogs, 12},
	} {
		if *c.v == 0 {
			*c.v = c.def
		}
		if *c.v < 0 || *c.v > maxPerPerson {
			return o, fmt.Errorf("refapp: %s must be between 0 and %d, not %d", c.name, maxPerPerson, *c.v)
		}
	}
	return o, nil
}

// batch holds the rows of a chunk of people, per table.
type batch struct{ rows map[string][][]any }

// dropCopied frees the rows copyBatch has copied, keeping the cross-person
// ones for later.
func (b *batch) dropCopied() {
	for t := range b.rows {
		if !crossPerson[t] {
			delete(b.rows, t)
		}
	}
}

// copyBatch copies b's rows into their tables, parents first; the
// cross-person tables' only when cross is set.
func copyBatch(ctx context.Context, tx pgx.Tx, schema string, specs []tableSpec, b *batch, cross bool) error {
	for _, s := range specs {
		rows := b.rows[s.name]
		if len(rows) == 0 || (crossPerson[s.name] && !cross) {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, s.name}, s.cols, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("refapp: copy %d rows into %s.%s: %w", len(rows), schema, s.name, err)
		}
	}
	return nil
}

// generator makes the people of one Generate call.
type generator struct {
	product Product
	opt     Options
	cols    map[string]int // table -> number of columns, to catch a generator out of step with its spec
	people  []Person
	// joins is each person's sign-up time, decided before anyone is
	// generated: referrals need the other party's.
	joins []time.Time
	// Bot referrals: referrer[i] is i's referrer (-1 for none); referees[j]
	// are the people j referred, in order.
	referrer []int
	referees [][]int
}

func newGenerator(product Product, opt Options) *generator {
	specs, _, _ := product.spec()
	g := &generator{product: product, opt: opt, cols: map[string]int{}, people: make([]Person, opt.People), joins: make([]time.Time, opt.People)}
	for _, s := range specs {
		g.cols[s.name] = len(s.cols)
	}
	for i := range g.joins {
		_, g.joins[i] = g.start(i)
	}
	if product == Bot {
		g.planReferrals()
	}
	return g
}

// start returns person i's random stream and sign-up time, its first draw.
// Each person has their own stream (seeded by Seed and their global index),
// so a person does not change when others are added or options change.
func (g *generator) start(i int) (*rand.Rand, time.Time) {
	r := rand.New(rand.NewPCG(uint64(g.opt.Seed), uint64(i+g.opt.IDOffset)))
	// Sign-ups spread over two years; the first person is the oldest, and
	// leaves room for visits before sign-up.
	earliest := g.opt.Now.Add(-2*365*24*time.Hour + 15*24*time.Hour)
	span := g.opt.Now.Add(-2*time.Hour).Sub(earliest) - time.Hour
	join := earliest.Add(time.Hour + time.Duration(r.Int64N(int64(span))))
	if i == 0 {
		join = earliest
	}
	return r, join.Truncate(time.Microsecond)
}

// referralRate is the share of bot users who joined through a referral link.
const referralRate = 0.3

// planReferrals picks who referred whom: a referrer is someone generated in
// the same call who joined earlier. The second person is always referred by
// the first, so the first person has a referral row.
func (g *generator) planReferrals() {
	n := g.opt.People
	g.referrer = make([]int, n)
	g.referees = make([][]int, n)
	// A stream of its own (^Seed never equals a person's Seed word).
	r := rand.New(rand.NewPCG(^uint64(g.opt.Seed), uint64(g.opt.IDOffset)))
	for i := range n {
		g.referrer[i] = -1
		if i == 0 || (i > 1 && r.Float64() >= referralRate) {
			continue
		}
		for try := 0; try < 3; try++ {
			j := 0
			if i > 1 {
				j = r.IntN(i)
			}
			if g.joins[j].Before(g.joins[i]) {
				g.referrer[i] = j
				g.referees[j] = append(g.referees[j], i)
				break
			}
		}
	}
}

// maxWorkers bounds the connections Generate inserts over. The database's
// per-row work (foreign-key checks, index entries) dominates, and it scales
// with connections until the server's cores are busy.
const maxWorkers = 4

// insert generates and inserts everyone: workers take chunks of people in
// turn, each generating a chunk and copying it into its own transaction.
// People's rows only point at their own rows, so the transactions never
// wait for one another; the exception, a referral pointing at the
// referrer, is inserted after all of them commit.
func (g *generator) insert(ctx context.Context, pool *pgxpool.Pool, schema string, specs []tableSpec) error {
	chunks := (g.opt.People + chunkPeople - 1) / chunkPeople
	workers := max(1, min(maxWorkers, chunks, int(pool.Config().MaxConns)))
	txs := make([]pgx.Tx, 0, workers)
	defer func() {
		for _, tx := range txs {
			tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
		}
	}()
	for range workers {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return fmt.Errorf("refapp: generate: begin: %w", err)
		}
		txs = append(txs, tx)
	}
	batches := make([]*batch, chunks) // kept for their cross-person rows
	if err := g.fill(ctx, txs, schema, specs, batches); err != nil {
		return err
	}
	for _, tx := range txs {
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("refapp: generate: commit: %w", err)
		}
	}
	return g.insertCrossPerson(ctx, pool, schema, specs, batches)
}

// fill runs one worker per transaction until every chunk is copied or one
// fails.
func (g *generator) fill(ctx context.Context, txs []pgx.Tx, schema string, specs []tableSpec, batches []*batch) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error // the others' are mostly "context canceled"
		wg       sync.WaitGroup
	)
	for _, tx := range txs {
		wg.Go(func() {
			for c := int(next.Add(1) - 1); c < len(batches) && ctx.Err() == nil; c = int(next.Add(1) - 1) {
				b := g.chunk(c)
				if err := copyBatch(ctx, tx, schema, specs, b, false); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					cancel()
					return
				}
				b.dropCopied()
				batches[c] = b
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// chunk generates chunk c of the people.
func (g *generator) chunk(c int) *batch {
	b := &batch{rows: map[string][][]any{}}
	for i := c * chunkPeople; i < min((c+1)*chunkPeople, g.opt.People); i++ {
		g.person(i, b)
	}
	return b
}

// insertCrossPerson inserts the rows that point at other people's, and
// counts them for the other party too.
func (g *generator) insertCrossPerson(ctx context.Context, pool *pgxpool.Pool, schema string, specs []tableSpec, chunks []*batch) error {
	for _, j := range g.referrer {
		if j >= 0 {
			g.people[j].Rows["tg_referrals"]++
		}
	}
	// In chunk order, so the rows go in in the same order every run.
	all := &batch{rows: map[string][][]any{}}
	for _, b := range chunks {
		for t, rows := range b.rows {
			all.rows[t] = append(all.rows[t], rows...)
		}
	}
	if len(all.rows) == 0 {
		return nil
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("refapp: generate: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if err := copyBatch(ctx, tx, schema, specs, all, true); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("refapp: generate: commit: %w", err)
	}
	return nil
}

// person generates person i into b.
func (g *generator) person(i int, b *batch) {
	r, join := g.start(i)
	p := &g.people[i]
	*p = Person{Index: i + g.opt.IDOffset, Rows: map[string]int{}}
	pg := &gen{generator: g, r: r, i: i, idx: p.Index, p: p, b: b, first: i == 0, join: join, now: g.opt.Now}
	if g.product == Web {
		pg.web()
	} else {
		pg.bot()
	}
}

// gen is the state of one person being generated.
type gen struct {
	*generator
	r     *rand.Rand
	i     int // index in this call
	idx   int // global index: i + IDOffset
	p     *Person
	b     *batch
	first bool // the first person: every table, every optional value, maximal counts
	join  time.Time
	now   time.Time
}

// add appends a row of this person's to table.
func (g *gen) add(table string, vals ...any) {
	g.addRow(table, vals)
	g.p.Rows[table]++
}

// addRow appends a row without counting it for this person.
func (g *gen) addRow(table string, vals []any) {
	if len(vals) != g.cols[table] {
		panic(fmt.Sprintf("refapp: %s row has %d values for %d columns", table, len(vals), g.cols[table]))
	}
	g.b.rows[table] = append(g.b.rows[table], vals)
}

// count is how many rows of something this person gets: max for the first
// person, else 1..max.
func (g *gen) count(max int) int {
	if g.first {
		return max
	}
	return 1 + g.r.IntN(max)
}

// chance is true with probability p, and always for the first person, who
// must have every optional row and value.
func (g *gen) chance(p float64) bool {
	return g.first || g.r.Float64() < p
}

// coin is true with probability p, for everyone.
func (g *gen) coin(p float64) bool { return g.r.Float64() < p }

// between is a random time in [a, b), or a if b is not after a.
func (g *gen) between(a, b time.Time) time.Time {
	if !b.After(a) {
		return a
	}
	return a.Add(time.Duration(g.r.Int64N(int64(b.Sub(a))))).Truncate(time.Microsecond)
}

// within is a random time up to d after t, but not after now.
func (g *gen) within(t time.Time, d time.Duration) time.Time {
	return g.between(t, minTime(t.Add(d), g.now))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// orNil turns "" into SQL NULL.
func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// timeOrNil turns the zero time into SQL NULL.
func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
