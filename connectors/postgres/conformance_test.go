package postgres_test

import (
	"context"
	"hash/crc32"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/refapp"
	"github.com/steward-privacy/steward/internal/restrictions"
	"github.com/steward-privacy/steward/policies"
)

// reference is the reference web and bot databases (schemas app and bot of
// one test database, filled with generated people), and the data map.
type reference struct {
	url  string
	pool *pgxpool.Pool
	dm   *datamap.Map
	web  []refapp.Person
	bot  []refapp.Person
}

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newReference(t testing.TB, people int) *reference {
	t.Helper()
	ctx := context.Background()
	url, pool := newDB(t, "app", "")
	if err := refapp.CreateSchema(ctx, pool, "app", refapp.Web); err != nil {
		t.Fatal(err)
	}
	if err := refapp.CreateSchema(ctx, pool, "bot", refapp.Bot); err != nil {
		t.Fatal(err)
	}
	e, err := policy.Load(ctx, policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	r := &reference{url: url, pool: pool, dm: e.DataMap}
	if r.web, err = refapp.Generate(ctx, pool, "app", refapp.Web, refapp.Options{People: people, Seed: 1, Now: now}); err != nil {
		t.Fatal(err)
	}
	if r.bot, err = refapp.Generate(ctx, pool, "bot", refapp.Bot, refapp.Options{People: people, Seed: 2, Now: now}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *reference) connector(t testing.TB, system, schema string, mod func(*postgres.Config)) *postgres.Connector {
	t.Helper()
	kr := keyring.NewRandom("t1")
	cfg := postgres.Config{System: system, DSN: r.url, Schema: schema, DataMap: staticMap(r.dm),
		Ledger: &restrictions.Ledger{Pool: r.pool, Keys: kr, Now: time.Now}}
	if system == "app_db" {
		cfg.RestrictColumns = map[string]string{"users": "processing_restricted"}
	} else {
		cfg.RestrictColumns = map[string]string{"tg_users": "processing_restricted"}
	}
	if mod != nil {
		mod(&cfg)
	}
	return newConnector(t, cfg)
}

// webLinked is what a hand-written query says the person's email links
// to: the reference answer ResolveIdentities must match.
func webLinked(t testing.TB, pool *pgxpool.Pool, userID, email string) []connectors.Identity {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT 'user', id, '' FROM app.users WHERE id = $1
		UNION SELECT 'stripe', stripe_customer_id, '' FROM app.users WHERE id = $1 AND stripe_customer_id IS NOT NULL
		UNION SELECT 'creem', creem_customer_id, '' FROM app.users WHERE id = $1 AND creem_customer_id IS NOT NULL
		UNION SELECT 'oauth', account_id, provider_id FROM app.accounts WHERE user_id = $1
		UNION SELECT 'visitor', id, '' FROM app.visitors WHERE user_id = $1
		UNION SELECT 'email', email, '' FROM app.support_tickets WHERE user_id = $1 AND email <> $2
		UNION SELECT 'email', email, '' FROM app.newsletter_preferences WHERE user_id = $1 AND email <> $2`, userID, email)
	if err != nil {
		t.Fatal(err)
	}
	var out []connectors.Identity
	for rows.Next() {
		var i connectors.Identity
		if err := rows.Scan(&i.Type, &i.Value, &i.Provider); err != nil {
			t.Fatal(err)
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// othersDigest is a digest of every row of the tables the suite touches
// that is not the subject's: erasing one person among thousands must leave
// it unchanged.
func othersDigest(t testing.TB, pool *pgxpool.Pool, userID string) int {
	t.Helper()
	var s string
	err := pool.QueryRow(context.Background(), `SELECT
		(SELECT md5(string_agg(md5(u::text), '' ORDER BY u.id)) FROM app.users u WHERE u.id <> $1) ||
		(SELECT md5(string_agg(md5(x::text), '' ORDER BY x.id)) FROM app.sessions x WHERE x.user_id <> $1) ||
		(SELECT md5(string_agg(md5(x::text), '' ORDER BY x.id)) FROM app.invoices x WHERE x.user_id <> $1) ||
		(SELECT md5(string_agg(md5(x::text), '' ORDER BY x.id)) FROM app.generation_jobs x WHERE x.user_id IS DISTINCT FROM $1) ||
		(SELECT md5(string_agg(md5(a::text), '' ORDER BY a.id)) FROM app.job_assets a JOIN app.generation_jobs j ON j.id = a.job_id WHERE j.user_id IS DISTINCT FROM $1)`, userID).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return int(crc32.ChecksumIEEE([]byte(s)))
}

func retain(f string) connectors.FieldPlan {
	return connectors.FieldPlan{Field: f, Category: "system.operations", Action: connectors.ActionRetain, Basis: "accounting", Until: "5 years"}
}

func mask(f, strategy, value string) connectors.FieldPlan {
	return connectors.FieldPlan{Field: f, Category: "user", Action: connectors.ActionMask, Strategy: strategy, Value: value}
}

func del(fields ...string) []connectors.FieldPlan { return plan(connectors.ActionDelete, fields...) }

// TestConformance runs the connector suite on the reference web database,
// each subject one new generated person among a thousand others.
func TestConformance(t *testing.T) {
	ref := newReference(t, 1000)
	c := ref.connector(t, "app_db", "app", nil)
	var faults connectortest.Injector
	postgres.SetInject(c, faults.Next)
	var next atomic.Int64
	next.Store(100_000)
	connectortest.Run(t, connectortest.Fixture{
		Connector: c,
		Inject:    faults.Inject,
		Seed: func(t testing.TB) connectortest.Subject {
			people, err := refapp.Generate(context.Background(), ref.pool, "app", refapp.Web,
				refapp.Options{People: 1, Seed: next.Load(), IDOffset: int(next.Add(1)), Now: now})
			if err != nil {
				t.Fatal(err)
			}
			p := people[0]
			n := func(table string) int {
				if p.Rows[table] == 0 {
					t.Fatalf("generated person has no %s", table)
				}
				return p.Rows[table]
			}
			return connectortest.Subject{
				Identities: []connectors.Identity{id("email", p.Email)},
				Linked:     webLinked(t, ref.pool, p.UserID, p.Email),
				Others:     func(t testing.TB) int { return othersDigest(t, ref.pool, p.UserID) },
				Datasets: []connectortest.Dataset{
					// Children before parents, as the engine orders them.
					{System: "app_db", Dataset: "job_assets", Records: n("job_assets"),
						Fields: del("id", "job_id", "kind", "object_key", "signed_url", "width", "height", "bytes", "created_at")},
					{System: "app_db", Dataset: "generation_jobs", Records: n("generation_jobs"),
						Fields: append(del("id", "user_id", "visitor_id", "prompt", "negative_prompt", "style_tags", "seed", "parameters", "output_format"),
							del("output_count", "model", "provider_request_id", "status", "safety_flags", "error", "runtime_ms", "created_at", "completed_at")...)},
					{System: "app_db", Dataset: "sessions", Records: n("sessions"),
						Fields: del("id", "user_id", "token", "ip_address", "user_agent", "impersonated_by", "expires_at", "created_at", "updated_at")},
					{System: "app_db", Dataset: "invoices", Records: n("invoices"),
						Fields: []connectors.FieldPlan{retain("id"), retain("payment_id"), retain("number"), retain("amount"), retain("currency"),
							retain("user_id"), mask("provider_invoice_id", connectors.StrategyKeyedHash, ""), mask("billing_name", connectors.StrategyFixed, "[redacted]"),
							mask("billing_email", connectors.StrategyKeyedHash, ""), mask("billing_address", connectors.StrategyNull, ""),
							mask("tax_id", connectors.StrategyPseudonym, ""), mask("issued_at", connectors.StrategyTruncateDate, ""),
							{Field: "pdf_url", Category: "user", Action: connectors.ActionDelete}, retain("tax_amount")}},
					{System: "app_db", Dataset: "users", Records: 1, Rectify: map[string]string{"name": "Ann Corrected", "language": "uz"},
						Fields: []connectors.FieldPlan{retain("id"), retain("created_at"), retain("role"),
							mask("email", connectors.StrategyKeyedHash, ""), mask("name", connectors.StrategyPseudonym, ""),
							{Field: "image", Category: "user", Action: connectors.ActionDelete}, retain("language"),
							mask("updated_at", connectors.StrategyTruncateDate, "")}},
				},
			}
		},
	})
}
