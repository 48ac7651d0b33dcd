package dsar_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

// fiveDatasetMap is a minimal data map: one automated system (a Telegram
// bot's PostgreSQL database) with five datasets, every one reachable from a
// tg: identity or the email address the account may hold. An access,
// erasure or restriction request plans exactly five automated tasks and
// nothing for staff.
const fiveDatasetMap = `version: 1
processing_purposes:
  bot_service:
    name: Process image generation requests and manage the account
    legal_basis: [contract]
    citation: "2.1 Service Provision"
  bot_improvement:
    name: Analyze usage and monitor performance
    legal_basis: [legitimate_interests]
    citation: "2.2 Service Improvement"
systems:
  bot_db:
    name: Bot database
    kind: postgres
    connector: postgres
    products: [bot]
    processor: self
    regions: [EU]
    datasets:
      tg_users:
        description: Telegram accounts.
        identities:
          - {field: tg_id, type: tg}
          - {field: email, type: email}
        timestamp: created_at
        purpose: bot_service
        retention: account
        fields:
          tg_id: {category: user.unique_id}
          email: {category: user.contact.email}
          username: {category: user.account.username}
          first_name: {category: user.name.first}
          language: {category: user.preferences.language}
          created_at: {category: system.operations}
      tg_generations:
        description: Generation requests.
        references:
          - {field: tg_user_id, to: bot_db.tg_users.tg_id}
        timestamp: created_at
        purpose: bot_service
        retention: bot_generation_history
        fields:
          id: {category: system.operations}
          tg_user_id: {category: user.unique_id}
          prompt: {category: user.content.prompt}
          created_at: {category: system.operations}
      tg_payments:
        description: Credit purchases with Telegram Stars.
        references:
          - {field: tg_user_id, to: bot_db.tg_users.tg_id}
        timestamp: created_at
        purpose: bot_service
        retention: payments
        fields:
          id: {category: system.operations}
          tg_user_id: {category: user.unique_id}
          stars_amount: {category: user.financial.payment}
          created_at: {category: system.operations}
      tg_credit_transactions:
        description: Credit ledger.
        references:
          - {field: tg_user_id, to: bot_db.tg_users.tg_id}
        timestamp: created_at
        purpose: bot_service
        retention: credit_logs
        fields:
          id: {category: system.operations}
          tg_user_id: {category: user.unique_id}
          delta: {category: user.financial.credits}
          created_at: {category: system.operations}
      tg_request_logs:
        description: Request log.
        references:
          - {field: tg_user_id, to: bot_db.tg_users.tg_id}
        timestamp: created_at
        purpose: bot_improvement
        retention: logs_analytics
        fields:
          request_id: {category: system.operations}
          tg_user_id: {category: user.unique_id}
          latency_ms: {category: system.operations}
          created_at: {category: system.operations}
`

var fiveDatasets = []string{"tg_credit_transactions", "tg_generations", "tg_payments", "tg_request_logs", "tg_users"}

var (
	smallEngineOnce sync.Once
	smallEngine     *policy.Engine
	smallEngineErr  error
)

// loadSmallEngine is the embedded bundle with its data map replaced by
// fiveDatasetMap.
func loadSmallEngine(t testing.TB) *policy.Engine {
	t.Helper()
	smallEngineOnce.Do(func() {
		smallEngine, smallEngineErr = policy.Load(context.Background(), replaceDataMap(policies.FS, fiveDatasetMap))
	})
	if smallEngineErr != nil {
		t.Fatal(smallEngineErr)
	}
	return smallEngine
}

// replaceDataMap copies a bundle into memory with another data/datamap.yaml.
func replaceDataMap(src fs.FS, datamap string) fs.FS {
	out := fstest.MapFS{}
	err := fs.WalkDir(src, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, path)
		if err != nil {
			return err
		}
		out[path] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	if err != nil {
		panic(err)
	}
	out["data/datamap.yaml"] = &fstest.MapFile{Data: []byte(datamap), Mode: 0o644}
	return out
}

func TestFiveDatasetBundlePlansFiveAutomatedTasks(t *testing.T) {
	t.Parallel()
	e := loadSmallEngine(t)
	reg := allSystems(recordstore.New(nil, recordstore.Options{}), e)
	for _, c := range []struct{ typ, kind string }{{"access", "tg"}, {"access", "email"}, {"erasure", "email"}, {"restriction", "tg"}} {
		typ := c.typ + " by " + c.kind
		p, err := dsar.BuildPlan(context.Background(), e, c.typ, "gdpr", []string{c.kind}, reg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tk := range p.Tasks {
			if tk.Mode != "automated" || tk.System != "bot_db" {
				t.Errorf("%s: task %s/%s is %s", typ, tk.System, tk.Dataset, tk.Mode)
			}
			got = append(got, tk.Dataset)
		}
		if strings.Join(got, ",") != strings.Join(fiveDatasets, ",") {
			t.Errorf("%s: tasks %v, want one per dataset %v", typ, got, fiveDatasets)
		}
	}
}

// seedBotUser stores a Telegram user's records in every dataset of the
// five-dataset map (and, for the reference map, the same datasets there).
func (r *rig) seedBotUser(tg string) {
	r.t.Helper()
	ctx := context.Background()
	id := []connectors.Identity{{Type: "tg", Value: tg}}
	put := func(dataset, key string, fields map[string]any) {
		if err := r.store.Put(ctx, "bot_db", dataset, key, id, fields); err != nil {
			r.t.Fatal(err)
		}
	}
	put("tg_users", tg, map[string]any{"tg_id": tg, "username": "user" + tg, "first_name": "Ann", "language": "en", "created_at": "2026-01-02T03:04:05Z"})
	put("tg_generations", tg+"-g1", map[string]any{"id": tg + "-g1", "tg_user_id": tg, "prompt": "a banana on the moon", "created_at": "2026-01-03T00:00:00Z"})
	put("tg_payments", tg+"-p1", map[string]any{"id": tg + "-p1", "tg_user_id": tg, "stars_amount": 250, "created_at": "2026-01-04T00:00:00Z"})
	put("tg_credit_transactions", tg+"-c1", map[string]any{"id": tg + "-c1", "tg_user_id": tg, "delta": 100, "created_at": "2026-01-04T00:00:00Z"})
	put("tg_request_logs", tg+"-l1", map[string]any{"request_id": tg + "-l1", "tg_user_id": tg, "latency_ms": 42, "created_at": "2026-01-05T00:00:00Z"})
}

// record reads one stored record's fields and restriction mark straight
// from the record store's table; ok is false when it does not exist.
func (r *rig) record(system, dataset, key string) (fields map[string]any, restricted, ok bool) {
	r.t.Helper()
	var b []byte
	err := r.pool.QueryRow(context.Background(), `SELECT fields, restricted FROM recordstore_records WHERE system = $1 AND dataset = $2 AND record_key = $3`,
		system, dataset, key).Scan(&b, &restricted)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") {
			return nil, false, false
		}
		r.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fields); err != nil {
		r.t.Fatal(err)
	}
	return fields, restricted, true
}

// count runs a count(*) query.
func (r *rig) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// eventNames lists a timeline's events in order.
func eventNames(tl []dsar.TimelineEntry) []string {
	out := make([]string, 0, len(tl))
	for _, e := range tl {
		out = append(out, e.Event)
	}
	return out
}
