package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// keptDDL: members' email (an identity) admits no masked value (its CHECK
// wants a real-looking address, not even an email-shaped hash) and has no
// neutral one; language admits its default; theme admits none of its
// masks and its default is no constant. settings.theme is a preference
// only.
const keptDDL = `
CREATE TABLE members (
    id       bigint PRIMARY KEY,
    email    text NOT NULL CHECK (email ~ '^[a-z]+@example\.(com|org)$'),
    language text NOT NULL DEFAULT 'en' CHECK (language IN ('uz', 'ru', 'en')),
    theme    text NOT NULL DEFAULT lower('LIGHT') CHECK (theme IN ('light', 'dark')));
CREATE TABLE settings (
    member_id bigint PRIMARY KEY REFERENCES members (id),
    theme     text NOT NULL DEFAULT lower('LIGHT') CHECK (theme IN ('light', 'dark')),
    font      text NOT NULL DEFAULT 'sans' CHECK (font IN ('sans', 'serif')));
INSERT INTO members VALUES (1, 'ann@example.com', 'ru', 'dark'), (2, 'bob@example.com', 'uz', 'dark');
INSERT INTO settings VALUES (1, 'dark', 'serif'), (2, 'dark', 'serif');`

func keptMap() *datamap.Map {
	f := func(names ...string) map[string]datamap.Field {
		out := map[string]datamap.Field{}
		for _, n := range names {
			out[n] = datamap.Field{Category: "user"}
		}
		return out
	}
	return &datamap.Map{Version: 1, Systems: map[string]datamap.System{"club": {
		Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{
			"members": {Table: "members", Identities: []datamap.Identity{{Field: "id", Type: "user"}, {Field: "email", Type: "email"}},
				Fields: f("id", "email", "language", "theme")},
			"settings": {Table: "settings", References: []datamap.Reference{{Field: "member_id", To: "club.members.id"}},
				Fields: f("member_id", "theme", "font")},
		},
	}}}
}

// TestEraseKeptByConstraint: values the column's constraints keep are
// reported as retained with the reason, the rest is written, and the
// erasure verifies, unless what was kept is an identity the plan erases:
// a fresh look by it would still find the person, so the result says so
// and is not verified.
func TestEraseKeptByConstraint(t *testing.T) {
	ctx := context.Background()
	url, pool := newDB(t, "club", keptDDL)
	c := newConnector(t, postgres.Config{System: "club", DSN: url, Schema: "club", DataMap: staticMap(keptMap())})
	erase := func(dataset string, fields []connectors.FieldPlan) connectors.EraseResult {
		t.Helper()
		res, err := c.Erase(ctx, connectors.EraseParams{Target: connectors.Target{System: "club", Dataset: dataset,
			Identities: []connectors.Identity{id("user", "1")}, RequestID: "r", IdempotencyKey: "k"}, Fields: fields})
		if err != nil {
			t.Fatalf("Erase %s: %v", dataset, err)
		}
		return res
	}
	kept := func(res connectors.EraseResult) []string {
		var out []string
		for _, r := range res.Retained {
			out = append(out, r.Field+": "+r.Basis)
		}
		return out
	}

	// A preference kept: reported, and verified.
	prefs := []connectors.FieldPlan{retain("member_id"), mask("theme", connectors.StrategyKeyedHash, ""), mask("font", connectors.StrategyFixed, "[redacted]")}
	res := erase("settings", prefs)
	wantKept := []string{
		"member_id: accounting",
		"theme: kept: CHECK constraint settings_theme_check admits no masked value; the column's default lower('LIGHT'::text) is not a constant; NOT NULL column of type text",
	}
	if !res.Verified || res.Masked != 1 || !slices.Equal(kept(res), wantKept) || res.Note != "" {
		t.Errorf("settings: %+v; want masked 1 (font), verified, kept %q", res, wantKept)
	}
	if got := snapshot(t, pool, "SELECT member_id, theme, font FROM club.settings ORDER BY member_id"); got != "[[1 dark sans] [2 dark serif]]" {
		t.Errorf("settings: %s", got)
	}

	// An identity kept: reported, and not verified, every time.
	fields := []connectors.FieldPlan{retain("id"), mask("email", connectors.StrategyKeyedHash, ""),
		mask("language", connectors.StrategyPseudonym, ""), {Field: "theme", Category: "user", Action: connectors.ActionDelete}}
	for run := 1; run <= 2; run++ {
		res := erase("members", fields)
		wantMasked := 1
		if run == 2 {
			wantMasked = 0
		}
		wantKept := []string{"id: accounting",
			"email: kept: CHECK constraint members_email_check admits no masked value; the column has no default; NOT NULL column of type text",
			"theme: kept: NOT NULL column of type text; the column's default lower('LIGHT'::text) is not a constant; CHECK constraint members_theme_check admits no masked value",
		}
		if res.Verified || res.Masked != wantMasked || !slices.Equal(kept(res), wantKept) ||
			!strings.Contains(res.Note, "the identity column members.email still holds the person's value in 1 record(s)") {
			t.Errorf("members, run %d: %+v; want masked %d, not verified, kept %q and a note on the email", run, res, wantMasked, wantKept)
		}
	}
	if got := snapshot(t, pool, "SELECT id, email, language, theme FROM club.members ORDER BY id"); got != "[[1 ann@example.com en dark] [2 bob@example.com uz dark]]" {
		t.Errorf("members: %s", got)
	}
}

// TestVerifiedCountsEveryPass: a value of the person's that one pass left
// in a row fails the verification although the verifying pass no longer
// finds the row (the first pass masked the address it was found by), and
// is reported as retained: a backup address whose CHECK admits no masked
// value, and one a BEFORE UPDATE trigger puts back.
func TestVerifiedCountsEveryPass(t *testing.T) {
	ctx := context.Background()
	url, pool := newDB(t, "club", `
CREATE TABLE checked (
    id           bigint PRIMARY KEY,
    email        text NOT NULL,
    backup_email text NOT NULL CHECK (backup_email ~ '^[a-z]+@example\.(com|org)$'));
CREATE TABLE restored (id bigint PRIMARY KEY, email text NOT NULL, backup_email text);
CREATE FUNCTION keep_backup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.backup_email := OLD.backup_email;
  RETURN NEW;
END $$;
CREATE TRIGGER keep_backup BEFORE UPDATE ON restored FOR EACH ROW EXECUTE FUNCTION keep_backup();
INSERT INTO checked VALUES (1, 'Ann@Example.com', 'ann@example.com'), (2, 'bob@example.com', 'bob@example.com');
INSERT INTO restored SELECT * FROM checked;`)
	fields := map[string]datamap.Field{"id": {Category: "user"}, "email": {Category: "user"}, "backup_email": {Category: "user"}}
	m := &datamap.Map{Version: 1, Systems: map[string]datamap.System{"club": {
		Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{
			"checked":  {Table: "checked", Identities: []datamap.Identity{{Field: "email", Type: "email"}}, Fields: fields},
			"restored": {Table: "restored", Identities: []datamap.Identity{{Field: "email", Type: "email"}}, Fields: fields},
		},
	}}}
	c := newConnector(t, postgres.Config{System: "club", DSN: url, Schema: "club", DataMap: staticMap(m)})
	for _, tc := range []struct{ dataset, basis string }{
		{"checked", "kept: CHECK constraint checked_backup_email_check"},
		{"restored", "kept: rewritten on every UPDATE by trigger(s) keep_backup of table restored"},
	} {
		res, err := c.Erase(ctx, connectors.EraseParams{Target: connectors.Target{System: "club", Dataset: tc.dataset,
			Identities: []connectors.Identity{id("email", "ann@example.com")}, RequestID: "r", IdempotencyKey: "k-" + tc.dataset},
			Fields: []connectors.FieldPlan{retain("id"), mask("email", connectors.StrategyKeyedHash, ""), mask("backup_email", connectors.StrategyKeyedHash, "")}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Verified || res.Masked != 1 ||
			!strings.Contains(res.Note, tc.dataset+".backup_email still holds a value of the person's identities in 1 record(s)") ||
			!slices.ContainsFunc(res.Retained, func(r connectors.Retained) bool {
				return r.Field == "backup_email" && r.Records == 1 && strings.HasPrefix(r.Basis, tc.basis)
			}) {
			t.Errorf("%s: %+v; want masked 1, not verified, backup_email kept (%s) and noted", tc.dataset, res, tc.basis)
		}
		if got := snapshot(t, pool, "SELECT id, email LIKE 'kh:%', backup_email FROM club."+tc.dataset+" ORDER BY id"); got != "[[1 true ann@example.com] [2 false bob@example.com]]" {
			t.Errorf("%s: %s", tc.dataset, got)
		}
	}
}
