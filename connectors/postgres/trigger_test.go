package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// triggerDDL: customers stamp last_update on every UPDATE (BEFORE) and
// copy the old row into customer_history (AFTER), which the map maps too;
// tickets bump a revision counter on every UPDATE and count their UPDATEs
// in a sequence; profiles refuse a change of email.
const triggerDDL = `
CREATE TABLE customers (
    id          bigint PRIMARY KEY,
    email       text,
    name        text,
    last_update timestamptz);
CREATE TABLE customer_history (
    hist_id     bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    email       text,
    name        text,
    last_update timestamptz,
    changed_at  timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_update := now();
    RETURN NEW;
END $$;
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO shop.customer_history (customer_id, email, name, last_update) VALUES (OLD.id, OLD.email, OLD.name, OLD.last_update);
    RETURN NULL;
END $$;
CREATE TRIGGER customers_stamp BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION stamp();
CREATE TRIGGER customers_audit AFTER UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION audit();
CREATE TABLE tickets (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    body        text,
    revision    integer);
CREATE SEQUENCE ticket_updates;
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := coalesce(OLD.revision, 0) + 1;
    PERFORM nextval('shop.ticket_updates');
    RETURN NEW;
END $$;
CREATE TRIGGER tickets_bump BEFORE UPDATE ON tickets FOR EACH ROW EXECUTE FUNCTION bump();
CREATE TABLE profiles (
    id    bigint PRIMARY KEY,
    email text,
    bio   text);
CREATE FUNCTION refuse_email() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'email addresses cannot be changed';
END $$;
CREATE TRIGGER profiles_email_immutable BEFORE UPDATE OF email ON profiles FOR EACH ROW EXECUTE FUNCTION refuse_email();
INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann', '2024-01-01'), (2, 'bob@example.com', 'Bob', '2024-01-02');
INSERT INTO customer_history (customer_id, email, name, last_update) VALUES (1, 'ann@old.example.com', 'Ann', '2023-01-01'), (2, 'bob@example.com', 'Bob', '2023-01-02');
INSERT INTO tickets VALUES (10, 1, 'my order', 1), (11, 1, 'again', 1), (20, 2, 'hello', 1);
INSERT INTO profiles VALUES (1, 'ann@example.com', 'hi'), (2, 'bob@example.com', 'yo');`

func triggerMap() *datamap.Map {
	f := func(names ...string) map[string]datamap.Field {
		out := map[string]datamap.Field{}
		for _, n := range names {
			out[n] = datamap.Field{Category: "user"}
		}
		return out
	}
	return &datamap.Map{Version: 1, Systems: map[string]datamap.System{"shop": {
		Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{
			"customers": {Table: "customers", Identities: []datamap.Identity{{Field: "id", Type: "user"}, {Field: "email", Type: "email"}},
				Fields: f("id", "email", "name", "last_update")},
			"customer_history": {Table: "customer_history", Identities: []datamap.Identity{{Field: "customer_id", Type: "user"}},
				Fields: f("hist_id", "customer_id", "email", "name", "last_update", "changed_at")},
			"tickets": {Table: "tickets", References: []datamap.Reference{{Field: "customer_id", To: "shop.customers.id"}},
				Fields: f("id", "customer_id", "body", "revision")},
			"profiles": {Table: "profiles", Identities: []datamap.Identity{{Field: "id", Type: "user"}, {Field: "email", Type: "email"}},
				Fields: f("id", "email", "bio")},
		},
	}}}
}

func deleted(f string) connectors.FieldPlan {
	return connectors.FieldPlan{Field: f, Category: "user", Action: connectors.ActionDelete}
}

// TestEraseWithTriggers: a BEFORE UPDATE trigger that stamps a planned
// field, a counter a trigger bumps and an AFTER UPDATE audit trigger copying
// the row into a mapped history table: the erasure succeeds on the first
// run, verified, in one UPDATE per row; the stamped and bumped fields are
// reported kept with the trigger named; the history's own erasure, ordered
// after, removes the copies; a second run changes nothing. A trigger that
// refuses the erasure's UPDATE fails it permanently, naming it.
func TestEraseWithTriggers(t *testing.T) {
	ctx := context.Background()
	url, pool := newDB(t, "shop", triggerDDL)
	var logs bytes.Buffer
	c := newConnector(t, postgres.Config{System: "shop", DSN: url, Schema: "shop", DataMap: staticMap(triggerMap()),
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, want := range []string{"dataset=customers", "customers_stamp (BEFORE UPDATE, FOR EACH ROW, function shop.stamp())", "customers_audit (AFTER UPDATE",
		`fields_their_source_mentions="[email id last_update name]"`, "dataset=profiles", "profiles_email_immutable (BEFORE UPDATE OF email"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs.String())
		}
	}
	if got := c.EraseAfter("shop", "customer_history"); !strings.Contains(strings.Join(got, ","), "customers") {
		t.Errorf("EraseAfter(customer_history) = %v; want customers (its audit trigger copies rows there)", got)
	}
	ids := []connectors.Identity{id("user", "1"), id("email", "ann@example.com")}
	erase := func(dataset string, fields []connectors.FieldPlan) (connectors.EraseResult, error) {
		return c.Erase(ctx, connectors.EraseParams{Target: connectors.Target{System: "shop", Dataset: dataset,
			Identities: ids, RequestID: "r", IdempotencyKey: "k"}, Fields: fields})
	}
	basis := func(res connectors.EraseResult, field string) string {
		for _, r := range res.Retained {
			if r.Field == field {
				return r.Basis
			}
		}
		return ""
	}
	history := func(customer int) int {
		return count(t, pool, "SELECT count(*) FROM shop.customer_history WHERE customer_id = $1", customer)
	}

	// Children first: tickets, whose revision a trigger bumps on every
	// UPDATE. Two rows, two UPDATEs, and no loop.
	tickets := []connectors.FieldPlan{retain("id"), retain("customer_id"), deleted("body"), deleted("revision")}
	res, err := erase("tickets", tickets)
	if err != nil {
		t.Fatalf("Erase tickets: %v", err)
	}
	if !res.Verified || res.Masked != 2 || !strings.Contains(basis(res, "revision"), "tickets_bump") {
		t.Errorf("tickets: %+v; want verified, masked 2, revision kept naming tickets_bump", res)
	}
	if n := count(t, pool, "SELECT last_value::int FROM shop.ticket_updates"); n != 2 {
		t.Errorf("tickets: %d UPDATEs; want 2 (one per row)", n)
	}
	if got := snapshot(t, pool, "SELECT id, body, revision FROM shop.tickets ORDER BY id"); got != "[[10 <nil> 2] [11 <nil> 2] [20 hello 1]]" {
		t.Errorf("tickets: %s", got)
	}

	// customers: last_update is stamped by a trigger, and every UPDATE is
	// copied into the history.
	customers := []connectors.FieldPlan{retain("id"), deleted("email"), deleted("name"), deleted("last_update")}
	res, err = erase("customers", customers)
	if err != nil {
		t.Fatalf("Erase customers: %v", err)
	}
	if !res.Verified || res.Masked != 1 || !strings.Contains(basis(res, "last_update"), "customers_stamp") ||
		!strings.Contains(res.Note, "copied 1 record(s) of the person into table customer_history") {
		t.Errorf("customers: %+v; want verified, masked 1, last_update kept naming customers_stamp, a note on the copy", res)
	}
	if n := history(1); n != 2 {
		t.Errorf("customers: %d history rows of customer 1; want 2 (one UPDATE copied)", n)
	}
	if got := snapshot(t, pool, "SELECT id, email, name, last_update > now() - interval '1 hour' FROM shop.customers ORDER BY id"); got != "[[1 <nil> <nil> true] [2 bob@example.com Bob false]]" {
		t.Errorf("customers: %s", got)
	}

	// A second run: nothing to do, no UPDATE, no trigger fired.
	res, err = erase("customers", customers)
	if err != nil || !res.Verified || res.Masked != 0 || history(1) != 2 {
		t.Errorf("customers, again: %+v, %v, %d history rows; want verified, nothing masked, no new copy", res, err, history(1))
	}

	// The history, after: the copies go too.
	res, err = erase("customer_history", []connectors.FieldPlan{deleted("hist_id"), deleted("customer_id"), deleted("email"), deleted("name"), deleted("last_update"), deleted("changed_at")})
	if err != nil || !res.Verified || res.Deleted != 2 {
		t.Errorf("customer_history: %+v, %v; want 2 deleted, verified", res, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM shop.customer_history WHERE email ILIKE 'ann%' OR name = 'Ann' OR customer_id = 1") +
		count(t, pool, "SELECT count(*) FROM shop.customers WHERE email ILIKE 'ann%' OR name = 'Ann'"); n != 0 {
		t.Errorf("%d rows still hold Ann's data", n)
	}
	if n := history(2); n != 1 {
		t.Errorf("Bob's history: %d rows; want 1", n)
	}

	// A trigger refuses the UPDATE of email: a permanent error naming
	// the table and the trigger, nothing changed.
	_, err = erase("profiles", []connectors.FieldPlan{retain("id"), mask("email", connectors.StrategyKeyedHash, ""), deleted("bio")})
	var ce *connectors.Error
	if err == nil || !errors.As(err, &ce) || ce.Retryable ||
		!strings.Contains(err.Error(), "table shop.profiles was refused by trigger profiles_email_immutable") ||
		!strings.Contains(err.Error(), "email addresses cannot be changed") {
		t.Errorf("profiles: %v; want a permanent error naming the table and the trigger", err)
	}
	if got := snapshot(t, pool, "SELECT id, email, bio FROM shop.profiles ORDER BY id"); got != "[[1 ann@example.com hi] [2 bob@example.com yo]]" {
		t.Errorf("profiles: %s", got)
	}
}

// TestEraseTriggerRestoresIdentity: a trigger that puts the old email back
// on every UPDATE: the erasure ends (no loop) but is not verified, and says
// which field still holds the identity.
func TestEraseTriggerRestoresIdentity(t *testing.T) {
	ctx := context.Background()
	url, _ := newDB(t, "shop", `
CREATE TABLE profiles (id bigint PRIMARY KEY, email text, bio text);
CREATE FUNCTION keep_email() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.email := OLD.email;
    RETURN NEW;
END $$;
CREATE TRIGGER profiles_keep_email BEFORE UPDATE ON profiles FOR EACH ROW EXECUTE FUNCTION keep_email();
INSERT INTO profiles VALUES (1, 'ann@example.com', 'hi');`)
	m := triggerMap()
	sys := m.Systems["shop"]
	sys.Datasets = map[string]datamap.Dataset{"profiles": sys.Datasets["profiles"]}
	m.Systems["shop"] = sys
	c := newConnector(t, postgres.Config{System: "shop", DSN: url, Schema: "shop", DataMap: staticMap(m)})
	res, err := c.Erase(ctx, connectors.EraseParams{Target: connectors.Target{System: "shop", Dataset: "profiles",
		Identities: []connectors.Identity{id("user", "1"), id("email", "ann@example.com")}, RequestID: "r", IdempotencyKey: "k"},
		Fields: []connectors.FieldPlan{retain("id"), mask("email", connectors.StrategyKeyedHash, ""), deleted("bio")}})
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if res.Verified || res.Masked != 1 || !strings.Contains(res.Note, "profiles.email still holds a value of the person's identities") {
		t.Errorf("%+v; want masked 1, not verified, a note on the email", res)
	}
}

// TestScanListsTriggers: the draft lists, per dataset, the triggers an
// erasure fires, with the columns and tables their source mentions.
func TestScanListsTriggers(t *testing.T) {
	url, _ := newDB(t, "shop", triggerDDL)
	cat, err := postgres.ReadCatalog(context.Background(), url, "shop")
	if err != nil {
		t.Fatal(err)
	}
	out, err := postgres.Scan(cat, postgres.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	draft := string(out)
	for _, want := range []string{
		"# review: trigger customers_audit (AFTER UPDATE, FOR EACH ROW, function shop.audit()) fires on an erasure's UPDATE: it may write columns of the row or rows of other tables, which cannot be known from the schema; its source mentions the columns id, email, name, last_update: a field it re-stamps on every UPDATE (a timestamp, a counter) is reported as kept, not erased; its source mentions the tables customer_history: if it copies the row there (an audit history), map that table too",
		"# review: trigger customers_stamp (BEFORE UPDATE, FOR EACH ROW, function shop.stamp()) fires on an erasure's UPDATE: it may write columns of the row or rows of other tables, which cannot be known from the schema; its source mentions the columns last_update: a field it re-stamps",
		"# review: trigger profiles_email_immutable (BEFORE UPDATE OF email, FOR EACH ROW, function shop.refuse_email()) fires on an erasure's UPDATE",
		"# review: trigger tickets_bump (BEFORE UPDATE, FOR EACH ROW, function shop.bump()) fires on an erasure's UPDATE: it may write columns of the row or rows of other tables, which cannot be known from the schema; its source mentions the columns revision",
	} {
		if !strings.Contains(draft, want) {
			t.Errorf("draft lacks %q", want)
		}
	}
	if strings.Count(draft, "# review: trigger ") != 4 {
		t.Errorf("draft lists %d triggers; want 4:\n%s", strings.Count(draft, "# review: trigger "), draft)
	}
}
