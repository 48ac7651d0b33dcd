package refapp_test

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/refapp"
	"github.com/steward-privacy/steward/policies"
)

// systems maps each product to its data-map system and the schema the tests
// create it in.
var systems = []struct {
	product refapp.Product
	system  string
	schema  string
}{
	{refapp.Web, "app_db", "app"},
	{refapp.Bot, "bot_db", "bot"},
}

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// dataMap is the reference data map, loaded the way Steward loads it.
func dataMap(t *testing.T) *datamap.Map {
	t.Helper()
	e, err := policy.Load(context.Background(), policies.FS)
	if err != nil {
		t.Fatalf("load policies: %v", err)
	}
	return e.DataMap
}

func createSchema(t *testing.T, pool *pgxpool.Pool, schema string, product refapp.Product) {
	t.Helper()
	if err := refapp.CreateSchema(context.Background(), pool, schema, product); err != nil {
		t.Fatal(err)
	}
}

// fkActions pins every foreign key and its ON DELETE action, so a changed
// action is a reviewed decision: the connector's tests rely on the variety
// (c = CASCADE, r = RESTRICT, a = NO ACTION, n = SET NULL).
var fkActions = map[string]map[string]string{
	"app": {
		"accounts.user_id -> users.id":                     "c",
		"sessions.user_id -> users.id":                     "c",
		"impersonation_logs.user_id -> users.id":           "a",
		"risk_flags.user_id -> users.id":                   "c",
		"visitors.user_id -> users.id":                     "n",
		"usage_quotas.user_id -> users.id":                 "c",
		"usage_quotas.visitor_id -> visitors.id":           "c",
		"subscriptions.user_id -> users.id":                "r",
		"payments.user_id -> users.id":                     "r",
		"invoices.user_id -> users.id":                     "r",
		"invoices.payment_id -> payments.id":               "r",
		"billing_profiles.user_id -> users.id":             "a",
		"credit_balances.user_id -> users.id":              "c",
		"credit_grants.user_id -> users.id":                "c",
		"credit_grants.payment_id -> payments.id":          "n",
		"credit_transactions.user_id -> users.id":          "r",
		"credit_transactions.grant_id -> credit_grants.id": "a",
		"credit_transactions.job_id -> generation_jobs.id": "n",
		"credit_transactions.payment_id -> payments.id":    "r",
		"disputes.user_id -> users.id":                     "a",
		"disputes.payment_id -> payments.id":               "r",
		"generation_jobs.user_id -> users.id":              "c",
		"generation_jobs.visitor_id -> visitors.id":        "n",
		"job_assets.job_id -> generation_jobs.id":          "c",
		"migration_records.user_id -> users.id":            "c",
		"support_tickets.user_id -> users.id":              "n",
		"support_messages.ticket_id -> support_tickets.id": "c",
		"newsletter_preferences.user_id -> users.id":       "n",
		"survey_responses.user_id -> users.id":             "c",
	},
	"bot": {
		"tg_generations.tg_user_id -> tg_users.tg_id":               "c",
		"tg_payments.tg_user_id -> tg_users.tg_id":                  "r",
		"tg_credit_transactions.tg_user_id -> tg_users.tg_id":       "a",
		"tg_credit_transactions.generation_id -> tg_generations.id": "n",
		"tg_credit_transactions.payment_id -> tg_payments.id":       "r",
		"tg_referrals.referrer_tg_id -> tg_users.tg_id":             "a",
		"tg_referrals.referee_tg_id -> tg_users.tg_id":              "a",
		"tg_broadcast_optouts.tg_user_id -> tg_users.tg_id":         "c",
		"tg_request_logs.tg_user_id -> tg_users.tg_id":              "n",
	},
}

// TestSchemaMatchesDataMap checks the schemas against the data map: every
// dataset of app_db and bot_db is a table with every mapped field as a
// column, every reference within the system is a foreign key, and every
// identity and foreign-key column leads an index (per-subject lookups and
// cascades are index scans).
func TestSchemaMatchesDataMap(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	m := dataMap(t)
	for _, s := range systems {
		t.Run(s.system, func(t *testing.T) {
			createSchema(t, pool, s.schema, s.product)
			createSchema(t, pool, s.schema, s.product) // idempotent
			cat := readCatalog(t, pool, s.schema)
			sys, ok := m.Systems[s.system]
			if !ok {
				t.Fatalf("data map has no system %s", s.system)
			}
			var mapped []string
			for id, ds := range sys.Datasets {
				mapped = append(mapped, ds.Table)
				checkDataset(t, cat, s.system, id, ds, sys)
			}
			if got, want := sorted(slices.Collect(maps.Keys(cat.columns))), sorted(mapped); !slices.Equal(got, want) {
				t.Errorf("tables in schema %s = %v, data map %s has %v", s.schema, got, s.system, want)
			}
			if got, want := sorted(refapp.Tables(s.product)), sorted(mapped); !slices.Equal(got, want) {
				t.Errorf("refapp.Tables(%s) = %v, want %v", s.product, got, want)
			}
			for fk, action := range cat.fks {
				if want, ok := fkActions[s.schema][fk]; !ok {
					t.Errorf("unexpected foreign key %s (ON DELETE %s); add it to fkActions", fk, action)
				} else if action != want {
					t.Errorf("foreign key %s: ON DELETE %s, want %s", fk, action, want)
				}
				col := strings.Fields(fk)[0]
				table, field, _ := strings.Cut(col, ".")
				if !cat.leads(table, field) {
					t.Errorf("foreign key column %s has no index", col)
				}
			}
			for fk := range fkActions[s.schema] {
				if _, ok := cat.fks[fk]; !ok {
					t.Errorf("foreign key %s is missing", fk)
				}
			}
			for table := range cat.columns {
				if !cat.pk[table] {
					t.Errorf("table %s has no primary key", table)
				}
			}
		})
	}
}

func checkDataset(t *testing.T, cat *catalog, system, id string, ds datamap.Dataset, sys datamap.System) {
	t.Helper()
	cols, ok := cat.columns[ds.Table]
	if !ok {
		t.Errorf("dataset %s.%s: table %s is missing", system, id, ds.Table)
		return
	}
	for f := range ds.Fields {
		if !cols[f] {
			t.Errorf("dataset %s.%s: table %s has no column %s", system, id, ds.Table, f)
		}
	}
	for _, ident := range ds.Identities {
		if ident.ProviderField != "" {
			if !cat.leads(ds.Table, ident.ProviderField, ident.Field) && !cat.leads(ds.Table, ident.Field, ident.ProviderField) {
				t.Errorf("identity %s.(%s, %s) has no index", ds.Table, ident.ProviderField, ident.Field)
			}
		} else if !cat.leads(ds.Table, ident.Field) {
			t.Errorf("identity %s.%s has no index", ds.Table, ident.Field)
		}
	}
	for _, ref := range ds.References {
		parts := strings.Split(ref.To, ".")
		if len(parts) != 3 || parts[0] != system {
			continue // another system's: no foreign key can say it
		}
		fk := fmt.Sprintf("%s.%s -> %s.%s", ds.Table, ref.Field, sys.Datasets[parts[1]].Table, parts[2])
		if _, ok := cat.fks[fk]; !ok {
			t.Errorf("dataset %s.%s: reference %s -> %s has no foreign key %s", system, id, ref.Field, ref.To, fk)
		}
	}
}

// catalog is what the tests need of a schema's pg_catalog.
type catalog struct {
	columns map[string]map[string]bool // table -> column
	fks     map[string]string          // "t.col -> t2.col2" -> confdeltype
	indexes map[string][][]string      // table -> each index's columns
	pk      map[string]bool
}

// leads reports whether an index of table starts with cols.
func (c *catalog) leads(table string, cols ...string) bool {
	for _, idx := range c.indexes[table] {
		if len(idx) >= len(cols) && slices.Equal(idx[:len(cols)], cols) {
			return true
		}
	}
	return false
}

func readCatalog(t *testing.T, pool *pgxpool.Pool, schema string) *catalog {
	t.Helper()
	c := &catalog{columns: map[string]map[string]bool{}, fks: map[string]string{}, indexes: map[string][][]string{}, pk: map[string]bool{}}
	each(t, pool, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1`, []any{schema}, func(r pgx.Rows) error {
		var table, col string
		if err := r.Scan(&table, &col); err != nil {
			return err
		}
		if c.columns[table] == nil {
			c.columns[table] = map[string]bool{}
		}
		c.columns[table][col] = true
		return nil
	})
	each(t, pool, `
		SELECT src.relname, sa.attname, dst.relname, da.attname, c.confdeltype::text, cardinality(c.conkey)
		FROM pg_constraint c
		JOIN pg_class src ON src.oid = c.conrelid
		JOIN pg_namespace n ON n.oid = src.relnamespace
		JOIN pg_class dst ON dst.oid = c.confrelid
		JOIN pg_attribute sa ON sa.attrelid = c.conrelid AND sa.attnum = c.conkey[1]
		JOIN pg_attribute da ON da.attrelid = c.confrelid AND da.attnum = c.confkey[1]
		WHERE c.contype = 'f' AND n.nspname = $1`, []any{schema}, func(r pgx.Rows) error {
		var src, scol, dst, dcol, action string
		var ncols int
		if err := r.Scan(&src, &scol, &dst, &dcol, &action, &ncols); err != nil {
			return err
		}
		if ncols != 1 {
			t.Errorf("foreign key on %s.%s has %d columns; the connector expects one", src, scol, ncols)
		}
		c.fks[fmt.Sprintf("%s.%s -> %s.%s", src, scol, dst, dcol)] = action
		return nil
	})
	each(t, pool, `
		SELECT t.relname, i.indisprimary, array_agg(a.attname::text ORDER BY k.ord)
		FROM pg_index i
		JOIN pg_class t ON t.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
		WHERE n.nspname = $1
		GROUP BY i.indexrelid, t.relname, i.indisprimary`, []any{schema}, func(r pgx.Rows) error {
		var table string
		var primary bool
		var cols []string
		if err := r.Scan(&table, &primary, &cols); err != nil {
			return err
		}
		c.indexes[table] = append(c.indexes[table], cols)
		c.pk[table] = c.pk[table] || primary
		return nil
	})
	return c
}

func each(t *testing.T, pool *pgxpool.Pool, q string, args []any, fn func(pgx.Rows) error) {
	t.Helper()
	rows, err := pool.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// owned says which rows of a table belong to a person, as a condition on
// the table's rows (alias t) and the person (alias me: id, email, tg).
var owned = map[string]string{
	"users":                  "t.id = me.id",
	"verifications":          "t.identifier = me.email",
	"job_assets":             "t.job_id IN (SELECT j.id FROM %[1]s.generation_jobs j WHERE j.user_id = me.id)",
	"support_messages":       "t.ticket_id IN (SELECT s.id FROM %[1]s.support_tickets s WHERE s.user_id = me.id)",
	"tg_users":               "t.tg_id = me.tg",
	"tg_referrals":           "me.tg IN (t.referrer_tg_id, t.referee_tg_id)",
	"tg_generations":         "t.tg_user_id = me.tg",
	"tg_payments":            "t.tg_user_id = me.tg",
	"tg_credit_transactions": "t.tg_user_id = me.tg",
	"tg_broadcast_optouts":   "t.tg_user_id = me.tg",
	"tg_request_logs":        "t.tg_user_id = me.tg",
}

// countOwned counts the person's rows of table.
func countOwned(t *testing.T, pool *pgxpool.Pool, schema, table string, p refapp.Person) int {
	t.Helper()
	cond, ok := owned[table]
	if !ok {
		cond = "t.user_id = me.id" // every other web table
	}
	ident := pgx.Identifier{schema}.Sanitize()
	q := fmt.Sprintf("WITH me AS (SELECT $1::text AS id, $2::text AS email, $3::bigint AS tg) SELECT count(*) FROM %s.%s t, me WHERE "+cond,
		ident, pgx.Identifier{table}.Sanitize())
	q = strings.ReplaceAll(q, "%[1]s", ident)
	var n int
	if err := pool.QueryRow(context.Background(), q, p.UserID, p.Email, p.TelegramID).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func generate(t *testing.T, pool *pgxpool.Pool, schema string, product refapp.Product, opt refapp.Options) []refapp.Person {
	t.Helper()
	createSchema(t, pool, schema, product)
	people, err := refapp.Generate(context.Background(), pool, schema, product, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(people) != opt.People {
		t.Fatalf("Generate returned %d people, want %d", len(people), opt.People)
	}
	return people
}

// fingerprint hashes every row of every table of the product in schema.
func fingerprint(t *testing.T, pool *pgxpool.Pool, schema string, product refapp.Product) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range refapp.Tables(product) {
		var h string
		q := fmt.Sprintf("SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM %s t", pgx.Identifier{schema, table}.Sanitize())
		if err := pool.QueryRow(context.Background(), q).Scan(&h); err != nil {
			t.Fatal(err)
		}
		out[table] = h
	}
	return out
}

// TestGenerate checks that Generate is deterministic, that Person.Rows is
// what the database holds for the person, and that the first person has
// rows in every table and every identity.
func TestGenerate(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	ctx := context.Background()
	for _, s := range systems {
		t.Run(string(s.product), func(t *testing.T) {
			opt := refapp.Options{People: 60, Seed: 42, Now: now}
			people := generate(t, pool, s.schema, s.product, opt)
			again := generate(t, pool, s.schema+"_again", s.product, opt)
			if !reflect.DeepEqual(people, again) {
				t.Errorf("same seed, different people: %+v vs %+v", people[0], again[0])
			}
			if a, b := fingerprint(t, pool, s.schema, s.product), fingerprint(t, pool, s.schema+"_again", s.product); !reflect.DeepEqual(a, b) {
				t.Errorf("same seed, different rows:\n%v\n%v", a, b)
			}
			opt.Seed = 43
			other := generate(t, pool, s.schema+"_other", s.product, opt)
			users := refapp.Tables(s.product)[0]
			if reflect.DeepEqual(people, other) || fingerprint(t, pool, s.schema, s.product)[users] == fingerprint(t, pool, s.schema+"_other", s.product)[users] {
				t.Error("a different seed made the same people")
			}

			first := people[0]
			checkIdentities(t, s.product, first)
			for _, table := range refapp.Tables(s.product) {
				if first.Rows[table] == 0 {
					t.Errorf("first person has no %s rows", table)
				}
				if got := countOwned(t, pool, s.schema, table, first); got != first.Rows[table] {
					t.Errorf("first person: %s has %d rows, Person.Rows says %d", table, got, first.Rows[table])
				}
				total, err := refapp.TableCount(ctx, pool, s.schema, table)
				if err != nil {
					t.Fatal(err)
				}
				sum := 0
				for _, p := range people {
					sum += p.Rows[table]
				}
				if table == "tg_referrals" {
					total *= 2 // a referral is both people's
				}
				if sum != total {
					t.Errorf("%s: people's rows add up to %d, the table has %d", table, sum, total)
				}
			}
		})
	}
}

func checkIdentities(t *testing.T, product refapp.Product, p refapp.Person) {
	t.Helper()
	var missing []string
	check := func(name string, ok bool) {
		if !ok {
			missing = append(missing, name)
		}
	}
	if product == refapp.Web {
		check("UserID", p.UserID != "")
		check("Email", strings.HasSuffix(p.Email, fmt.Sprintf(".%05d@", p.Index)+strings.SplitN(p.Email, "@", 2)[1]))
		check("StripeCustomerID", strings.HasPrefix(p.StripeCustomerID, "cus_"))
		check("CreemCustomerID", strings.HasPrefix(p.CreemCustomerID, "cust_"))
		check("OAuth", p.OAuthProvider == "google" && p.OAuthAccountID != "")
		check("VisitorID", p.VisitorID != "")
	} else {
		check("TelegramID", p.TelegramID > 0)
		check("Username", p.Username != "")
	}
	if len(missing) > 0 {
		t.Errorf("first person lacks %v: %+v", missing, p)
	}
}

// TestGenerateOffsets fills one schema from two calls with different seeds
// and disjoint IDOffsets: no unique value may collide.
func TestGenerateOffsets(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	for _, s := range systems {
		t.Run(string(s.product), func(t *testing.T) {
			a := generate(t, pool, s.schema, s.product, refapp.Options{People: 40, Seed: 1, Now: now})
			b := generate(t, pool, s.schema, s.product, refapp.Options{People: 40, Seed: 2, Now: now, IDOffset: 40})
			seen := map[string]bool{}
			for _, p := range append(a, b...) {
				for _, id := range []string{p.UserID, p.Email, p.StripeCustomerID, p.CreemCustomerID, p.OAuthAccountID, p.VisitorID, p.Username, fmt.Sprint(p.TelegramID)} {
					if id == "" || id == "0" {
						continue
					}
					if seen[id] {
						t.Errorf("identity %q appears twice", id)
					}
					seen[id] = true
				}
			}
			n, err := refapp.TableCount(context.Background(), pool, s.schema, refapp.Tables(s.product)[0])
			if err != nil {
				t.Fatal(err)
			}
			if n != 80 {
				t.Errorf("%d people in the schema, want 80", n)
			}
		})
	}
}

func TestGenerateRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"unknown product": func() error { return refapp.CreateSchema(ctx, nil, "x", "desktop") },
		"empty schema":    func() error { _, err := refapp.Generate(ctx, nil, "", refapp.Web, refapp.Options{}); return err },
		"negative people": func() error {
			_, err := refapp.Generate(ctx, nil, "x", refapp.Web, refapp.Options{People: -1})
			return err
		},
		"too many jobs": func() error {
			_, err := refapp.Generate(ctx, nil, "x", refapp.Web, refapp.Options{Jobs: 1000})
			return err
		},
	} {
		if err := call(); err == nil || !strings.HasPrefix(err.Error(), "refapp: ") {
			t.Errorf("%s: err = %v, want a refapp error", name, err)
		}
	}
}
