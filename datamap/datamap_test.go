package datamap_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/steward-privacy/steward/datamap"
)

// retentionRules are the retention rule ids the reference map uses, and
// whether each has a duration. retention.json is written alongside this
// package, so the tests pin the ids rather than read the file.
var retentionRules = map[string]bool{
	"account":                false, // until account deletion
	"payments":               true,  // 5 years
	"credit_logs":            true,  // 2 years
	"ai_content":             true,  // 30 days
	"logs_analytics":         true,  // 180 days
	"marketing_preferences":  false, // until withdrawal
	"support":                true,
	"rate_limit":             true,
	"bot_generation_history": false, // "stored indefinitely"
	"security_logs":          true,
	"provider_temporary":     true, // Wavespeed URLs, typically 24-72 hours
	"bot_state":              true, // Redis bot state, temporary
}

func loadCategories(t testing.TB) map[string]datamap.Category {
	t.Helper()
	src, err := os.ReadFile("../policies/data/categories.json")
	if err != nil {
		t.Fatal(err)
	}
	cats, err := datamap.ParseCategories("categories.json", src)
	if err != nil {
		t.Fatal(err)
	}
	return cats
}

func testRefs(t testing.TB) datamap.Refs {
	t.Helper()
	cats := map[string]bool{}
	for c := range loadCategories(t) {
		cats[c] = true
	}
	src, err := os.ReadFile("../policies/data/products.json")
	if err != nil {
		t.Fatal(err)
	}
	var products map[string]json.RawMessage
	if err := json.Unmarshal(src, &products); err != nil {
		t.Fatal(err)
	}
	prods := map[string]bool{}
	for p := range products {
		prods[p] = true
	}
	return datamap.Refs{Categories: cats, RetentionRules: retentionRules, Products: prods}
}

func referenceSource(t testing.TB) []byte {
	t.Helper()
	src, err := os.ReadFile("../policies/data/datamap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func referenceMap(t testing.TB) *datamap.Map {
	t.Helper()
	m, err := datamap.Parse("datamap.yaml", referenceSource(t), testRefs(t))
	if err != nil {
		t.Fatalf("reference map:\n%v", err)
	}
	return m
}

func TestReferenceMapParses(t *testing.T) {
	t.Parallel()
	m := referenceMap(t)
	if err := m.Validate(testRefs(t)); err != nil {
		t.Fatalf("re-validate: %v", err)
	}
	for _, p := range []string{"web", "bot"} {
		found := false
		for _, s := range m.Systems {
			found = found || slices.Contains(s.Products, p)
		}
		if !found {
			t.Errorf("no system for product %s", p)
		}
	}
}

// TestReferenceMapUsesEverything keeps the reference files tidy: every
// processing purpose is used by a dataset, and every category is used by a
// field or is the parent of one that is.
func TestReferenceMapUsesEverything(t *testing.T) {
	t.Parallel()
	m := referenceMap(t)
	usedPurpose := map[string]bool{}
	usedCat := map[string]bool{}
	for _, f := range m.Fields() {
		usedPurpose[f.Purpose] = true
		for c := f.Category; c != ""; {
			usedCat[c] = true
			i := strings.LastIndexByte(c, '.')
			if i < 0 {
				break
			}
			c = c[:i]
		}
	}
	for id := range m.ProcessingPurposes {
		if !usedPurpose[id] {
			t.Errorf("processing purpose %q is used by no dataset", id)
		}
	}
	for c := range loadCategories(t) {
		if !usedCat[c] {
			t.Errorf("category %q is used by no field", c)
		}
	}
}

// TestPolicyViewMatchesGo checks that the document the policy engine builds
// from the YAML (data.steward.datamap) is the one Go parsed, key for key.
func TestPolicyViewMatchesGo(t *testing.T) {
	t.Parallel()
	var raw any
	if err := yaml.Unmarshal(referenceSource(t), &raw); err != nil {
		t.Fatal(err)
	}
	fromYAML, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	fromGo, err := json.Marshal(referenceMap(t))
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal(fromYAML, &a)
	_ = json.Unmarshal(fromGo, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("policy view differs from Go view\nyaml: %.400s\ngo:   %.400s", fromYAML, fromGo)
	}
}

func TestFields(t *testing.T) {
	t.Parallel()
	m := referenceMap(t)
	fields := m.Fields()
	want := 0
	for _, s := range m.Systems {
		for _, ds := range s.Datasets {
			want += len(ds.Fields)
		}
	}
	if len(fields) != want {
		t.Fatalf("Fields() = %d fields, the map has %d", len(fields), want)
	}
	key := func(f datamap.FieldRef) string { return f.System + "\x00" + f.Dataset + "\x00" + f.Field }
	if !slices.IsSortedFunc(fields, func(a, b datamap.FieldRef) int { return strings.Compare(key(a), key(b)) }) {
		t.Error("Fields() is not sorted")
	}
	byName := map[string]datamap.FieldRef{}
	for _, f := range fields {
		if f.Category == "" || f.Retention == "" || f.Purpose == "" {
			t.Errorf("%s.%s.%s: incomplete %+v", f.System, f.Dataset, f.Field, f)
		}
		byName[f.System+"."+f.Dataset+"."+f.Field] = f
	}
	for name, want := range map[string]datamap.FieldRef{
		"app_db.users.email": {System: "app_db", Dataset: "users", Field: "email", Category: "user.contact.email",
			Retention: "account", Purpose: "provide_service", Identity: "email"},
		"app_db.generation_jobs.user_id": {System: "app_db", Dataset: "generation_jobs", Field: "user_id", Category: "user.unique_id",
			Retention: "ai_content", Purpose: "provide_service", Reference: "app_db.users.id"},
		"app_db.invoices.tax_id": {System: "app_db", Dataset: "invoices", Field: "tax_id", Category: "user.financial.tax_id",
			Retention: "payments", Purpose: "payments"},
		"bot_db.tg_users.tg_id": {System: "bot_db", Dataset: "tg_users", Field: "tg_id", Category: "user.unique_id",
			Retention: "account", Purpose: "bot_service", Identity: "tg"},
		"bot_db.tg_generations.prompt": {System: "bot_db", Dataset: "tg_generations", Field: "prompt", Category: "user.content.prompt",
			Retention: "bot_generation_history", Purpose: "bot_service"},
	} {
		if got := byName[name]; got != want {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
}

func TestReachPath(t *testing.T) {
	t.Parallel()
	m := referenceMap(t)
	for _, tc := range []struct {
		system, dataset string
		want            []string
	}{
		{"app_db", "users", []string{"app_db.users.email"}},
		{"app_db", "generation_jobs", []string{"app_db.users.email", "app_db.users.id -> app_db.generation_jobs.user_id"}},
		{"app_db", "job_assets", []string{"app_db.users.email", "app_db.users.id -> app_db.generation_jobs.user_id",
			"app_db.generation_jobs.id -> app_db.job_assets.job_id"}},
		{"app_db", "accounts", []string{"app_db.accounts.account_id"}},
		{"app_db", "sessions", []string{"app_db.users.email", "app_db.users.id -> app_db.sessions.user_id"}},
		{"object_store", "uploads", []string{"object_store.uploads.{user_id}"}},
		{"stripe", "disputes", []string{"stripe.customers.email", "stripe.customers.id -> stripe.charges.customer",
			"stripe.charges.id -> stripe.disputes.charge"}},
		{"bot_db", "tg_generations", []string{"bot_db.tg_users.tg_id", "bot_db.tg_users.tg_id -> bot_db.tg_generations.tg_user_id"}},
		{"wavespeed", "predictions", []string{"bot_db.tg_users.tg_id", "bot_db.tg_users.tg_id -> bot_db.tg_generations.tg_user_id",
			"bot_db.tg_generations.wavespeed_request_id -> wavespeed.predictions.id"}},
		{"bot_cache", "rate_limits", []string{"bot_cache.rate_limits.{tg}"}},
	} {
		got, err := m.ReachPath(tc.system, tc.dataset)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ReachPath(%s, %s) = %q, %v\nwant %q", tc.system, tc.dataset, got, err, tc.want)
		}
	}
	if _, err := m.ReachPath("app_db", "nope"); err == nil {
		t.Error("ReachPath of an unknown dataset succeeded")
	}
	if _, err := m.ReachPath("nope", "users"); err == nil {
		t.Error("ReachPath of an unknown system succeeded")
	}
}

func TestCategories(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, src, want string }{
		{"missing parent", `{"user.contact.email": {"name": "Email", "description": "d"}}`, `parent category "user.contact" is not defined`},
		{"duplicate", `{"user": {"name": "U", "description": "d"}, "user": {"name": "U", "description": "d"}}`, `duplicate category "user"`},
		{"unknown key", `{"user": {"name": "U", "description": "d", "colour": "red"}}`, `unknown field "colour"`},
		{"bad name", `{"User": {"name": "U", "description": "d"}}`, `category name "User" must match`},
		{"no description", `{"user": {"name": "U"}}`, `name and description are required`},
		{"not an object", `[]`, `must be a JSON object`},
	} {
		_, err := datamap.ParseCategories("c.json", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// base is a small valid map. The problem cases edit it, so their expected
// line numbers are those of this text (line 1 is "version: 1").
const base = `version: 1
processing_purposes:
  provide_service:
    name: Provide the service
    legal_basis: [contract]
    citation: "Provide core features | Contractual necessity"
systems:
  app_db:
    name: App database
    kind: postgres
    connector: postgres
    products: [web]
    processor: Neon
    regions: [EU]
    datasets:
      users:
        description: Accounts
        table: users
        identities:
          - {field: id, type: user}
          - {field: email, type: email}
        timestamp: created_at
        purpose: provide_service
        retention: account
        fields:
          id: {category: user.unique_id}
          email: {category: user.contact.email}
          created_at: {category: system.operations}
      generation_jobs:
        description: Jobs
        table: generation_jobs
        references:
          - {field: user_id, to: app_db.users.id}
        timestamp: created_at
        purpose: provide_service
        retention: ai_content
        fields:
          id: {category: system.operations}
          user_id: {category: user.unique_id}
          prompt: {category: user.content.prompt}
          created_at: {category: system.operations}
  objects:
    name: Object storage
    kind: object_store
    connector: objectstore
    products: [web]
    processor: self
    regions: [EU]
    datasets:
      uploads:
        description: Uploads
        prefix: "uploads/{user_id}/"
        timestamp: last_modified
        purpose: provide_service
        retention: ai_content
        fields:
          body: {category: user.content.image}
          last_modified: {category: system.operations}
`

// edit applies old->new replacements to base; each old must occur exactly once.
func edit(t testing.TB, pairs ...string) string {
	t.Helper()
	s := base
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("edit: %q occurs %d times", pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

var stripeSystem = `  pay:
    name: Stripe
    kind: stripe
    connector: stripe
    products: [web]
    processor: Stripe
    regions: [US]
    datasets:
      customers:
        description: Customers
        identities:
          - {field: id, type: stripe}
        timestamp: created
        purpose: provide_service
        retention: payments
        fields:
          id: {category: user.unique_id}
          created: {category: system.operations}
`

// problemCases are one edit each, with every problem it must produce, as
// "file:line: path: message" prefixes.
var problemCases = []struct {
	name  string
	edits []string
	want  []string
}{
	{"unknown category",
		[]string{"email: {category: user.contact.email}", "email: {category: user.contact.emial}"},
		[]string{`t.yaml:27: systems.app_db.datasets.users.fields.email: unknown category "user.contact.emial" (did you mean "user.contact.email"?)`}},
	{"dangling reference to a dataset",
		[]string{"to: app_db.users.id", "to: app_db.user.id"},
		[]string{
			`t.yaml:29: systems.app_db.datasets.generation_jobs: not reachable from any identity`,
			`t.yaml:33: systems.app_db.datasets.generation_jobs.references[0]: dangling reference "app_db.user.id": system "app_db" has no dataset "user" (did you mean "users"?)`,
		}},
	{"dangling reference to a field",
		[]string{"to: app_db.users.id", "to: app_db.users.uid"},
		[]string{`t.yaml:33: systems.app_db.datasets.generation_jobs.references[0]: dangling reference "app_db.users.uid": dataset app_db.users has no field "uid" (did you mean "id"?)`}},
	{"dangling reference to a system",
		[]string{"to: app_db.users.id", "to: appdb.users.id"},
		[]string{
			`t.yaml:29: systems.app_db.datasets.generation_jobs: not reachable from any identity`,
			`t.yaml:33: systems.app_db.datasets.generation_jobs.references[0]: dangling reference "appdb.users.id": no system "appdb" (did you mean "app_db"?)`,
		}},
	{"malformed reference",
		[]string{"to: app_db.users.id", "to: users.id"},
		[]string{
			`t.yaml:29: systems.app_db.datasets.generation_jobs: not reachable from any identity`,
			`t.yaml:33: systems.app_db.datasets.generation_jobs.references[0]: reference "users.id" must be system.dataset.field`,
		}},
	{"reference field not declared",
		[]string{"{field: user_id, to: app_db.users.id}", "{field: owner_id, to: app_db.users.id}"},
		[]string{`t.yaml:33: systems.app_db.datasets.generation_jobs.references[0]: reference field "owner_id" is not in fields`}},
	{"duplicate key",
		[]string{"        table: users\n", "        table: users\n        table: accounts\n"},
		[]string{`t.yaml:19: systems.app_db.datasets.users.table: duplicate key "table" (first defined at line 18)`}},
	{"duplicate dataset",
		[]string{"      generation_jobs:\n", "      users:\n"},
		[]string{`t.yaml:29: systems.app_db.datasets.users: duplicate key "users" (first defined at line 16)`}},
	{"duplicate dataset whose first definition is wrong",
		[]string{"      generation_jobs:\n", "      users:\n", "retention: account", "retention: acount"},
		[]string{
			`t.yaml:24: systems.app_db.datasets.users.retention: unknown retention rule "acount"`,
			`t.yaml:29: systems.app_db.datasets.users: duplicate key "users" (first defined at line 16)`,
		}},
	{"non-string key",
		[]string{"    regions: [EU]\n    datasets:\n      users:", "    regions: [EU]\n    7: seven\n    datasets:\n      users:", "retention: account", "retention: acount"},
		[]string{
			`t.yaml:15: systems.app_db: keys must be strings, not a number`,
			`t.yaml:25: systems.app_db.datasets.users.retention: unknown retention rule "acount"`,
		}},
	{"unsafe table name",
		[]string{"table: users", `table: "users; drop table"`},
		[]string{`t.yaml:18: systems.app_db.datasets.users.table: unsafe table name "users; drop table": must match`}},
	{"unsafe column name",
		[]string{"prompt: {category", `"prompt; drop table users": {category`},
		[]string{`t.yaml:40: systems.app_db.datasets.generation_jobs.fields."prompt; drop table users": unsafe column name "prompt; drop table users"`}},
	{"prefix with ..",
		[]string{`"uploads/{user_id}/"`, `"uploads/../{user_id}/"`},
		[]string{`t.yaml:52: systems.objects.datasets.uploads.prefix: unsafe prefix "uploads/../{user_id}/": must not contain '..'`}},
	{"prefix with leading slash",
		[]string{`"uploads/{user_id}/"`, `"/uploads/{user_id}/"`},
		[]string{`t.yaml:52: systems.objects.datasets.uploads.prefix: unsafe prefix "/uploads/{user_id}/": must not start with '/'`}},
	{"prefix with %2f",
		[]string{`"uploads/{user_id}/"`, `"uploads%2F{user_id}/"`},
		[]string{`t.yaml:52: systems.objects.datasets.uploads.prefix: unsafe prefix "uploads%2F{user_id}/": must not contain percent-escapes`}},
	{"prefix with backslash",
		[]string{`"uploads/{user_id}/"`, `'uploads\{user_id}/'`},
		[]string{`t.yaml:52: systems.objects.datasets.uploads.prefix: unsafe prefix "uploads\\{user_id}/": must not contain '\'`}},
	{"prefix without placeholder",
		[]string{`"uploads/{user_id}/"`, `"uploads/"`},
		[]string{
			`t.yaml:50: systems.objects.datasets.uploads: not reachable from any identity`,
			`t.yaml:52: systems.objects.datasets.uploads.prefix: unsafe prefix "uploads/": has no placeholder`,
		}},
	{"prefix with unknown placeholder",
		[]string{`"uploads/{user_id}/"`, `"uploads/{bucket}/"`},
		[]string{
			`t.yaml:50: systems.objects.datasets.uploads: not reachable from any identity`,
			`t.yaml:52: systems.objects.datasets.uploads.prefix: unsafe prefix "uploads/{bucket}/": placeholder {bucket} is neither an identity type`,
		}},
	{"prefix placeholder not followed by a separator",
		[]string{`"uploads/{user_id}/"`, `"uploads/{user_id}"`},
		[]string{`t.yaml:52: systems.objects.datasets.uploads.prefix: unsafe prefix "uploads/{user_id}": placeholder {user_id} must be followed by '/'`}},
	{"overlapping prefixes",
		[]string{"          last_modified: {category: system.operations}\n", "          last_modified: {category: system.operations}\n" +
			"      visitor_uploads:\n        description: Visitor uploads\n        prefix: \"uploads/visitors/{visitor}/\"\n" +
			"        timestamp: last_modified\n        purpose: provide_service\n        retention: ai_content\n" +
			"        fields:\n          body: {category: user.content.image}\n          last_modified: {category: system.operations}\n"},
		[]string{`t.yaml:52: systems.objects.datasets.uploads.prefix: prefix "uploads/{user_id}/" overlaps dataset visitor_uploads ("uploads/visitors/{visitor}/"): a placeholder value of "visitors"`}},
	{"two id kinds in one key space",
		[]string{"          last_modified: {category: system.operations}\n", "          last_modified: {category: system.operations}\n" +
			"      tg_uploads:\n        description: Telegram uploads\n        prefix: \"uploads/{tg}/\"\n" +
			"        timestamp: last_modified\n        purpose: provide_service\n        retention: ai_content\n" +
			"        fields:\n          body: {category: user.content.image}\n          last_modified: {category: system.operations}\n"},
		[]string{`t.yaml:52: systems.objects.datasets.uploads.prefix: prefix "uploads/{user_id}/" keys by user but tg_uploads ("uploads/{tg}/") keys the same place by tg`}},
	{"unreachable dataset",
		[]string{"        references:\n          - {field: user_id, to: app_db.users.id}\n", ""},
		[]string{`t.yaml:29: systems.app_db.datasets.generation_jobs: not reachable from any identity`}},
	{"missing timestamp",
		[]string{"        timestamp: created_at\n        purpose: provide_service\n        retention: ai_content\n", "        purpose: provide_service\n        retention: ai_content\n"},
		[]string{`t.yaml:35: systems.app_db.datasets.generation_jobs: retention rule "ai_content" has a duration, so the dataset needs a timestamp field`}},
	{"timestamp not a field",
		[]string{"        timestamp: last_modified\n", "        timestamp: modified\n"},
		[]string{`t.yaml:53: systems.objects.datasets.uploads.timestamp: timestamp field "modified" is not in fields`}},
	{"unknown retention id",
		[]string{"retention: account", "retention: acount"},
		[]string{`t.yaml:24: systems.app_db.datasets.users.retention: unknown retention rule "acount" (did you mean "account"?)`}},
	{"unknown identity type",
		[]string{"type: email}", "type: e-mail}"},
		[]string{`t.yaml:21: systems.app_db.datasets.users.identities[1]: unknown identity type "e-mail" (did you mean "email"?)`}},
	{"identity field not declared",
		[]string{"{field: email, type: email}", "{field: mail, type: email}"},
		[]string{`t.yaml:21: systems.app_db.datasets.users.identities[1]: identity field "mail" is not in fields`}},
	{"unknown identity match",
		[]string{"{field: email, type: email}", "{field: email, type: email, match: case-insensitive}"},
		[]string{`t.yaml:21: systems.app_db.datasets.users.identities[1]: unknown match "case-insensitive" (did you mean "case_insensitive"?); expected exact or case_insensitive`}},
	{"identity match outside postgres",
		[]string{"systems:\n", "systems:\n" + strings.Replace(stripeSystem, "type: stripe}", "type: stripe, match: exact}", 1) + "        object: customer\n"},
		[]string{`t.yaml:19: systems.pay.datasets.customers.identities[0]: match applies only to postgres systems, not stripe`}},
	{"column name with a space",
		[]string{"prompt: {category", `"the prompt": {category`},
		[]string{`t.yaml:40: systems.app_db.datasets.generation_jobs.fields."the prompt": unsafe column name "the prompt"`}},
	{"oauth identity without provider",
		[]string{"{field: email, type: email}", "{field: email, type: oauth}"},
		[]string{`t.yaml:21: systems.app_db.datasets.users.identities[1]: oauth identities need provider_field`}},
	{"unknown purpose",
		[]string{"        purpose: provide_service\n        retention: account", "        purpose: provide_servce\n        retention: account"},
		[]string{`t.yaml:23: systems.app_db.datasets.users.purpose: unknown processing purpose "provide_servce" (did you mean "provide_service"?)`}},
	{"unknown product",
		[]string{"    processor: Neon\n", "    processor: Neon\n    products: [wbe]\n"},
		[]string{`t.yaml:14: systems.app_db.products: duplicate key "products" (first defined at line 12)`}},
	{"unknown product in list",
		[]string{"    kind: postgres\n    connector: postgres\n    products: [web]", "    kind: postgres\n    connector: postgres\n    products: [web, wbe]"},
		[]string{`t.yaml:12: systems.app_db.products: unknown product "wbe" (did you mean "web"?)`}},
	{"unknown recipient",
		[]string{"        retention: account\n", "        retention: account\n        recipients: [stripe]\n"},
		[]string{`t.yaml:25: systems.app_db.datasets.users.recipients: unknown system "stripe"`}},
	{"unknown legal basis",
		[]string{"legal_basis: [contract]", "legal_basis: [contract, legitimate_interest]"},
		[]string{`t.yaml:5: processing_purposes.provide_service.legal_basis: unknown legal basis "legitimate_interest" (did you mean "legitimate_interests"?)`}},
	{"connector cannot serve kind",
		[]string{"connector: objectstore", "connector: postgres"},
		[]string{`t.yaml:45: systems.objects: connector "postgres" cannot serve a object_store system; use objectstore or manual`}},
	{"unknown kind",
		[]string{"kind: object_store", "kind: s3"},
		[]string{`t.yaml:44: systems.objects: unknown kind "s3"`}},
	{"unknown key",
		[]string{"description: Accounts", "descripton: Accounts"},
		[]string{
			`t.yaml:16: systems.app_db.datasets.users: description is required`,
			`t.yaml:17: systems.app_db.datasets.users.descripton: unknown key "descripton" (did you mean "description"?)`,
		}},
	{"wrong type",
		[]string{"version: 1", `version: "1"`},
		[]string{`t.yaml:1: version: must be an integer, not a string`}},
	{"wrong version",
		[]string{"version: 1", `version: 2`},
		[]string{`t.yaml:1: version: must be 1`}},
	{"list where a string belongs",
		[]string{"table: users", "table: [users]"},
		[]string{`t.yaml:18: systems.app_db.datasets.users.table: must be a string, not a list`}},
	{"control character",
		[]string{"description: Accounts", `description: "Acc\u0007ounts"`},
		[]string{`t.yaml:17: systems.app_db.datasets.users.description: contains control character U+0007`}},
	{"alias",
		[]string{"    regions: [EU]\n    datasets:\n      users:", "    regions: &r [EU]\n    datasets:\n      users:", "    processor: self\n    regions: [EU]", "    processor: self\n    regions: *r"},
		[]string{`t.yaml:48: systems.objects.regions: aliases (*r) are not supported`}},
	{"stripe dataset without object",
		[]string{"systems:\n", "systems:\n" + stripeSystem},
		[]string{`t.yaml:16: systems.pay.datasets.customers: stripe datasets need an API object type`}},
	{"table outside postgres",
		[]string{`        prefix: "uploads/{user_id}/"`, "        prefix: \"uploads/{user_id}/\"\n        table: uploads"},
		[]string{`t.yaml:53: systems.objects.datasets.uploads.table: table applies only to postgres systems, not object_store`}},
	{"two datasets on one table",
		[]string{"table: generation_jobs", "table: users"},
		[]string{`t.yaml:18: systems.app_db.datasets.users.table: table "users" is also dataset "generation_jobs"`}},
	{"syntax error",
		[]string{"version: 1", "version: [1"},
		[]string{`t.yaml:1: did not find expected ',' or ']'`}},
	{"second document",
		[]string{"version: 1\n", "version: 1\n---\nversion: 1\n---\n"},
		[]string{`t.yaml:2: more than one YAML document`}},
}

func TestProblems(t *testing.T) {
	t.Parallel()
	refs := testRefs(t)
	if _, err := datamap.Parse("t.yaml", []byte(base), refs); err != nil {
		t.Fatalf("base map: %v", err)
	}
	for _, tc := range problemCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := edit(t, tc.edits...)
			m, err := datamap.Parse("t.yaml", []byte(src), refs)
			if err == nil {
				t.Fatalf("accepted:\n%s", src)
			}
			if m != nil {
				t.Error("a map came back with an error")
			}
			var de *datamap.Error
			if !errors.As(err, &de) {
				t.Fatalf("error is %T, want *datamap.Error", err)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tc.want {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
					t.Errorf("missing problem\n  %s\ngot\n  %s", w, strings.Join(lines, "\n  "))
				}
			}
			if len(lines) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n  %s", len(lines), len(tc.want), strings.Join(lines, "\n  "))
			}
			for _, p := range de.Problems {
				if p.File != "t.yaml" || p.Line <= 0 {
					t.Errorf("problem without file:line: %+v", p)
				}
			}
		})
	}
}

// TestAllProblemsAtOnce checks that problems are not cut short at the first
// and come back sorted by line.
func TestAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	src := edit(t,
		"email: {category: user.contact.email}", "email: {category: user.contact.emial}",
		"table: users", `table: "users; drop table"`,
		`"uploads/{user_id}/"`, `"../{user_id}/"`,
		"retention: account", "retention: forever",
		"type: email}", "type: phone}",
	)
	_, err := datamap.Parse("t.yaml", []byte(src), testRefs(t))
	var de *datamap.Error
	if !errors.As(err, &de) {
		t.Fatalf("err = %v", err)
	}
	if len(de.Problems) != 5 {
		t.Fatalf("got %d problems, want 5:\n%v", len(de.Problems), err)
	}
	if !slices.IsSortedFunc(de.Problems, func(a, b datamap.Problem) int { return a.Line - b.Line }) {
		t.Errorf("problems not sorted by line:\n%v", err)
	}
}

// TestValidateGoMap covers maps built in Go: no lines, and no defaults
// filled in by Parse.
func TestValidateGoMap(t *testing.T) {
	t.Parallel()
	m := &datamap.Map{
		Version: 1,
		ProcessingPurposes: map[string]datamap.Purpose{
			"p": {Name: "P", LegalBasis: []string{"contract"}, Citation: "c"},
		},
		Systems: map[string]datamap.System{
			"db": {Name: "DB", Kind: "postgres", Connector: "postgres", Products: []string{"web"}, Processor: "self", Regions: []string{"EU"},
				Datasets: map[string]datamap.Dataset{
					"users": {Description: "d", Purpose: "p", Retention: "account",
						Identities: []datamap.Identity{{Field: "id", Type: "user"}},
						Fields:     map[string]datamap.Field{"id": {Category: "user.unique_id"}}},
				}},
		},
	}
	err := m.Validate(testRefs(t))
	if err == nil || err.Error() != "datamap: systems.db.datasets.users: postgres datasets need a table" {
		t.Fatalf("err = %v", err)
	}
	ds := m.Systems["db"].Datasets["users"]
	ds.Table = "users"
	m.Systems["db"].Datasets["users"] = ds
	if err := m.Validate(testRefs(t)); err != nil {
		t.Fatal(err)
	}
}

// TestPrefixFromReference covers a key template whose placeholder is a
// reference field: the objects are reached through the referenced rows.
func TestPrefixFromReference(t *testing.T) {
	t.Parallel()
	src := edit(t, "          last_modified: {category: system.operations}\n", "          last_modified: {category: system.operations}\n"+
		"      job_files:\n        description: Job files\n        prefix: \"jobs/{job_id}/\"\n"+
		"        references:\n          - {field: job_id, to: app_db.generation_jobs.id}\n"+
		"        timestamp: last_modified\n        purpose: provide_service\n        retention: ai_content\n"+
		"        fields:\n          job_id: {category: system.operations}\n          body: {category: user.content.image}\n"+
		"          last_modified: {category: system.operations}\n")
	m, err := datamap.Parse("t.yaml", []byte(src), testRefs(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.ReachPath("objects", "job_files")
	want := []string{"app_db.users.email", "app_db.users.id -> app_db.generation_jobs.user_id", "app_db.generation_jobs.id -> objects.job_files.job_id"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ReachPath = %q, %v; want %q", got, err, want)
	}
}

func TestTableDefaultsToDatasetID(t *testing.T) {
	t.Parallel()
	m, err := datamap.Parse("t.yaml", []byte(edit(t, "        table: users\n", "")), testRefs(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Systems["app_db"].Datasets["users"].Table; got != "users" {
		t.Fatalf("table = %q, want the dataset id", got)
	}
}

func TestEmptyAndHugeInput(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "   \n", "[]", "null", "version: 1\nsystems: 5\n", "version: 1\n", "version: 1\nprocessing_purposes: {}\nsystems: {}\n"} {
		if _, err := datamap.Parse("t.yaml", []byte(src), testRefs(t)); err == nil {
			t.Errorf("accepted %q", src)
		}
	}
	huge := strings.Repeat("#", datamap.MaxSize+1)
	if _, err := datamap.Parse("t.yaml", []byte(huge), testRefs(t)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge input: %v", err)
	}
}

func TestReachableFrom(t *testing.T) {
	m := referenceMap(t)
	byEmail := m.ReachableFrom([]string{"email"})
	if _, ok := byEmail["app_db.users"]; !ok {
		t.Fatal("email does not reach app_db.users")
	}
	if _, ok := byEmail["bot_db.tg_users"]; ok {
		t.Error("email alone reaches the bot's users table, which is keyed by Telegram id")
	}
	if p := byEmail["object_store.uploads"]; p != nil {
		t.Errorf("email alone reaches uploads keyed by account id: %v", p)
	}
	withAccount := m.ReachableFrom([]string{"email", "user", "tg"})
	for _, want := range []string{"object_store.uploads", "bot_db.tg_users", "bot_db.tg_generations", "app_db.users"} {
		if len(withAccount[want]) == 0 {
			t.Errorf("%s not reached from email+user+tg", want)
		}
	}
	if len(m.ReachableFrom(nil)) != 0 {
		t.Error("no identity reaches something")
	}
}

// TestIdentityMatchAndQuotedNames: an identity may say how it is compared,
// and Postgres names may be mixed-case (quoted identifiers) or contain $.
func TestIdentityMatchAndQuotedNames(t *testing.T) {
	t.Parallel()
	src := edit(t,
		"{field: email, type: email}", "{field: email, type: email, match: exact}",
		"{field: id, type: user}", "{field: id, type: user, match: case_insensitive}",
		"table: generation_jobs", `table: "GenerationJobs"`,
		"prompt: {category", "promptText$v2: {category")
	m, err := datamap.Parse("t.yaml", []byte(src), testRefs(t))
	if err != nil {
		t.Fatal(err)
	}
	users := m.Systems["app_db"].Datasets["users"]
	var got []string
	for _, id := range users.Identities {
		got = append(got, id.Field+":"+id.Match)
	}
	if want := []string{"id:" + datamap.MatchCaseInsensitive, "email:" + datamap.MatchExact}; !slices.Equal(got, want) {
		t.Errorf("identities %v, want %v", got, want)
	}
	jobs := m.Systems["app_db"].Datasets["generation_jobs"]
	if _, ok := jobs.Fields["promptText$v2"]; jobs.Table != "GenerationJobs" || !ok {
		t.Errorf("quoted names: table %q, fields %v", jobs.Table, jobs.Fields)
	}
}
