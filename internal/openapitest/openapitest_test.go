package openapitest_test

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/steward-privacy/steward/internal/openapitest"
)

// The real document and router, read by relative path so the tests check
// exactly what the server embeds and registers.
const (
	docPath    = "../api/openapi.json"
	serverPath = "../api/server.go"
)

func loadDoc(t *testing.T) (*openapitest.Doc, []byte) {
	t.Helper()
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := openapitest.Load(raw)
	if err != nil {
		t.Fatalf("Load(%s): %v", docPath, err)
	}
	return d, raw
}

const (
	eventID = "01925f3e-7c1a-7b4e-9a3d-2f6b8c1d4e5a"
	rev     = "3f9c2a7b1d4e8f60"
	hashHex = "9b1f0c6e2a7d4b38e5f1a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607"
	jsonCT  = "application/json"
	probCT  = "application/problem+json"
)

// A recorded event as consent.Event marshals it, with every optional field.
const eventFull = `{"id":"` + eventID + `","subject_kind":"email","purpose":"marketing","state":"granted",
	"source":"web_banner","notice_version":"2.0","jurisdiction":"DE","language":"en","product":"web","gpc":false,
	"user_agent":"Mozilla/5.0","ip_hash":"` + hashHex + `","recorded_by":"key_5f1c2a9e7b30",
	"policy_revision":"` + rev + `","recorded_at":"2025-03-14T09:26:53.589793Z"}`

// An event Steward recorded itself on a GPC signal: no omitempty field set.
const eventGPC = `{"id":"01925f3e-7c19-7d02-8b6f-0e1a2b3c4d5e","subject_kind":"oauth:google","purpose":"model_training",
	"state":"denied","source":"gpc","notice_version":"1.0","product":"bot","gpc":true,
	"policy_revision":"` + rev + `","recorded_at":"2025-03-10T18:02:11Z"}`

const receiptBody = `{"receipt":{
	"header":{"record_id":"` + eventID + `","schema_version":"ISO/IEC TS 27560:2023","profile":"steward-consent-receipt/1",
		"record_timestamp":"2025-03-14T09:26:53.589793Z","language":"en","policy_revision":"` + rev + `"},
	"processing":{"purposes":[{"name":"Marketing","purpose_id":"marketing","data_use":"marketing.communications.email","dpv_purpose":"dpv:DirectMarketing"}],
		"legal_basis":"dpv:Consent","jurisdiction":"DE","regime":"gdpr","notice_version":"2.0"},
	"parties":{"data_controller":{"name":"Nano Banana Pro","contact":"support@nano-bananapro.com"},
		"data_subject":{"pseudonymous_id":"` + hashHex + `","id_type":"email"}},
	"event":{"type":"given","state":"granted","time":"2025-03-14T09:26:53.589793Z","method":"web_banner","product":"web","gpc":false,
		"user_agent":"Mozilla/5.0","ip_hash":"` + hashHex + `"}},
	"jws":"eyJhbGciOiJFZERTQSJ9.eyJoZWFkZXIiOnt9fQ.c2lnbmF0dXJl",
	"jwks_url":"/v1/consents/receipts/jwks.json"}`

const reqID = "0b6f7c1e-2a3d-4e5f-8a9b-0c1d2e3f4a5b"

const privacyRequest = `{"id":"` + reqID + `","type":"access","status":"in_progress","channel":"web","product":"web","language":"en","region":"DE","regime":"gdpr",
	"subject_kind":"email","received_at":"2026-02-03T10:15:30Z","due_at":"2026-03-03T10:15:30Z","original_due_at":"2026-03-03T10:15:30Z",
	"extendable_until":"2026-05-03T10:15:30Z","extension_notice_by":"2026-03-03T10:15:30Z","extended":false,"verified_at":"2026-02-03T10:16:00Z",
	"verification":"email_code","approval_required":false,"approval_rule":"no_approval","planned_at":"2026-02-03T10:16:00Z","overdue":false}`

// A CCPA access request verified to "high" by the code and a recent
// invoice, as dsar.Request marshals it.
const privacyRequestHigh = `{"id":"` + reqID + `","type":"access","status":"verified","channel":"web","product":"web","language":"en","region":"US-CA","regime":"ccpa",
	"subject_kind":"email","received_at":"2026-02-03T10:15:30Z","due_at":"2026-03-20T10:15:30Z","original_due_at":"2026-03-20T10:15:30Z","extended":false,
	"verified_at":"2026-02-03T10:17:00Z","verification":"recent_invoice","verification_required":"high","verification_level":"high",
	"verification_methods":[{"method":"email_code","level":"reasonable","at":"2026-02-03T10:16:00Z","actor":"system:dsar"},
	{"method":"recent_invoice","level":"high","at":"2026-02-03T10:17:00Z","actor":"system:dsar"}],"package_review":true,"overdue":false}`

// A request paused by the engine because it found nothing, as
// dsar.Request marshals it.
const privacyRequestPaused = `{"id":"` + reqID + `","type":"access","status":"paused","paused_from":"in_progress",
	"pause_reason":"No records were found for the given identities in any system.","channel":"web","language":"en","region":"DE","regime":"gdpr",
	"subject_kind":"email","received_at":"2026-02-03T10:15:30Z","due_at":"2026-03-03T10:15:30Z","original_due_at":"2026-03-03T10:15:30Z",
	"extended":false,"verified_at":"2026-02-03T10:16:00Z","verification":"email_code","approval_required":false,"approval_rule":"no_approval",
	"planned_at":"2026-02-03T10:16:00Z","overdue":false}`

// The same request re-planned: verified again, its plan cleared.
const privacyRequestReplanned = `{"id":"` + reqID + `","type":"access","status":"verified","channel":"web","language":"en","region":"DE","regime":"gdpr",
	"subject_kind":"email","received_at":"2026-02-03T10:15:30Z","due_at":"2026-03-03T10:15:30Z","original_due_at":"2026-03-03T10:15:30Z",
	"extended":false,"verified_at":"2026-02-03T10:16:00Z","verification":"email_code","overdue":false}`

// problem is an api.Problem body; writeProblem always sets request_id.
func problem(status int, code string, extra string) string {
	return `{"type":"urn:steward:problem:` + code + `","title":"t","status":` + strconv.Itoa(status) +
		`,"detail":"d","code":"` + code + `","request_id":"5f2a9c1e7b3d-1a"` + extra + `}`
}

const auditEntry = `{"seq":1,"at":"2026-02-03T10:15:30.123456Z","actor":"key:key_5f1c2a9e7b30","action":"key.revoked",
	"target_type":"api_key","target_id":"key_0a1b2c3d4e5f","details":{},"policy_revision":"` + rev + `",
	"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"` + hashHex + `"}`

// Retention bodies, hand-written from retention.Run, DatasetRun, PlanItem,
// Hold and HoldInput (internal/retention/service.go, plan.go, holds.go) in
// their field order. matched is a *int64 without omitempty: null until the
// dataset is final, never absent.
const (
	runID  = "3b7e1f2a-9c4d-4e8b-a6f1-0d2c5b8e7a91"
	holdID = "c41d8e2f-6a3b-4f7c-9e1d-5b2a8c0f3e64"
)

// A finished scheduled run of two datasets: one swept, one left to staff.
const retentionRunDone = `{"id":"` + runID + `","trigger":"schedule","actor":"system:scheduler","dry_run":false,
	"at":"2026-03-01T03:00:00Z","status":"completed","finished_at":"2026-03-01T03:00:41.207Z","policy_revision":"` + rev + `",
	"datasets":[
		{"system":"app_db","dataset":"payments","rule":"payments","action":"delete","basis":"legal_obligation",
		 "cutoff":"2021-02-28T03:00:00Z","status":"succeeded","matched":412,"deleted":409,"anonymized":0,"bytes":0,"held":3,"kept":0,
		 "errors":0,"started_at":"2026-03-01T03:00:00.412Z","finished_at":"2026-03-01T03:00:02.95Z","duration_ms":2538},
		{"system":"stripe","dataset":"customers","rule":"payments","action":"delete","basis":"legal_obligation",
		 "cutoff":"2021-02-28T03:00:00Z","status":"manual","matched":0,"deleted":0,"anonymized":0,"bytes":0,"held":0,"kept":0,
		 "errors":0,"note":"Stripe has no deletion by age: staff delete or redact customers older than 5 years in the Stripe dashboard",
		 "started_at":"2026-03-01T03:00:00.398Z","finished_at":"2026-03-01T03:00:00.401Z","duration_ms":3}]}`

// A run still going: one dataset retrying after a failed attempt (counts of
// the batches it committed, matched still null), one held as a whole, and
// Steward's own records queued. Nothing of finished_at is set yet.
const retentionRunGoing = `{"id":"7d1c0b9a-2e3f-4a5b-8c6d-9e0f1a2b3c4d","trigger":"api","actor":"key:key_5f1c2a9e7b30","dry_run":false,
	"at":"2026-03-04T14:22:05.118734Z","status":"running","policy_revision":"` + rev + `",
	"datasets":[
		{"system":"app_db","dataset":"visitors","rule":"logs_analytics","action":"anonymize","basis":"legitimate_interests",
		 "cutoff":"2025-09-05T14:22:05.118734Z","status":"held","matched":5120,"deleted":0,"anonymized":0,"bytes":0,"held":5120,"kept":0,
		 "errors":0,"note":"legal hold ` + holdID + ` (category)","started_at":"2026-03-04T14:22:05.5Z","finished_at":"2026-03-04T14:22:06.1Z","duration_ms":600},
		{"system":"object_store","dataset":"generated_images","rule":"ai_content","action":"delete","basis":"contract",
		 "cutoff":"2026-02-02T14:22:05.118734Z","status":"running","matched":null,"deleted":1500,"anonymized":0,"bytes":734003200,"held":0,"kept":0,
		 "errors":1,"last_error":"objectstore: list generated/: connection reset by peer","started_at":"2026-03-04T14:22:05.4Z","duration_ms":90211},
		{"system":"steward","dataset":"verification_codes","rule":"control_plane","action":"delete","basis":"legitimate_interests",
		 "cutoff":"2026-03-03T14:22:05.118734Z","status":"pending","matched":null,"deleted":0,"anonymized":0,"bytes":0,"held":0,"kept":0,
		 "errors":0,"duration_ms":0}]}`

// A dry run of one dataset as POST /v1/retention/runs answers it: queued.
const retentionRunStarted = `{"id":"` + runID + `","trigger":"api","actor":"key:key_5f1c2a9e7b30","dry_run":true,"dataset":"app_db.payments",
	"at":"2026-03-04T14:22:05.118734Z","status":"running","policy_revision":"` + rev + `",
	"datasets":[{"system":"app_db","dataset":"payments","rule":"payments","action":"delete","basis":"legal_obligation",
		"cutoff":"2021-03-03T14:22:05.118734Z","status":"pending","matched":null,"deleted":0,"anonymized":0,"bytes":0,"held":0,"kept":0,
		"errors":0,"duration_ms":0}]}`

// A plan with every item status; note is omitempty.
const retentionPlan = `{"rules":[
	{"system":"app_db","dataset":"payments","rule":"payments","period":"5 years","days":1827,"timestamp":"created_at","action":"delete",
	 "basis":"legal_obligation","cutoff":"2021-03-03T14:22:05.118734Z","status":"due","due":412,"held":3},
	{"system":"app_db","dataset":"sessions","rule":"security_logs","period":"180 days","days":180,"timestamp":"created_at","action":"anonymize",
	 "basis":"legitimate_interests","cutoff":"2025-09-05T14:22:05.118734Z","status":"clear","due":0,"held":0},
	{"system":"app_db","dataset":"visitors","rule":"logs_analytics","period":"180 days","days":180,"timestamp":"last_seen_at","action":"anonymize",
	 "basis":"legitimate_interests","cutoff":"2025-09-05T14:22:05.118734Z","status":"held","due":5120,"held":5120,"note":"legal hold ` + holdID + ` (category)"},
	{"system":"stripe","dataset":"customers","rule":"payments","period":"5 years","days":1827,"timestamp":"created","action":"delete",
	 "basis":"legal_obligation","cutoff":"2021-03-03T14:22:05.118734Z","status":"manual","due":0,"held":0,
	 "note":"Stripe has no deletion by age: staff delete or redact customers older than 5 years in the Stripe dashboard"},
	{"system":"bot_db","dataset":"generations","rule":"ai_content","period":"","days":30,"timestamp":"created_at","action":"delete",
	 "basis":"contract","cutoff":"2026-02-02T14:22:05.118734Z","status":"error","due":0,"held":0,"note":"postgres: connect: connection refused"},
	{"system":"steward","dataset":"verification_codes","rule":"control_plane","period":"1 day","days":1,"timestamp":"expires_at","action":"delete",
	 "basis":"legitimate_interests","cutoff":"2026-03-03T14:22:05.118734Z","status":"due","due":37,"held":0}]}`

// Holds of each scope. subject is never marshalled (unexported); its kind is.
const (
	holdDataset = `{"id":"` + holdID + `","scope":"dataset","system":"app_db","dataset":"payments",
		"reason":"Tax audit FY2020: keep payment records until the audit closes","created_by":"key:key_5f1c2a9e7b30",
		"created_at":"2026-03-04T14:30:12.004Z","active":true}`
	holdCategory = `{"id":"0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f","scope":"category","category":"user.device",
		"reason":"Fraud investigation INC-2026-014","created_by":"system:cli","created_at":"2026-02-20T09:12:44Z",
		"expires_at":"2026-08-20T00:00:00Z","active":true}`
	holdLifted = `{"id":"5e0a7b3c-1d2f-4a8e-b9c6-7f4d2e1a0b38","scope":"subject","subject_kind":"oauth:google",
		"reason":"Litigation hold, case 24-cv-0192","created_by":"key:key_5f1c2a9e7b30","created_at":"2025-11-03T16:40:00Z",
		"lifted_at":"2026-03-02T10:05:31Z","lifted_by":"key:key_0a1b2c3d4e5f","lift_reason":"Case settled and closed","active":false}`
	// Expired, never lifted: not active, no lifted_* fields.
	holdExpired = `{"id":"9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d","scope":"subject","subject_kind":"email",
		"reason":"Preservation letter","created_by":"key:key_5f1c2a9e7b30","created_at":"2025-06-01T08:00:00Z",
		"expires_at":"2025-12-01T08:00:00Z","active":false}`
)

// holdInvalid is validateHold's problem: every bad field listed.
var holdInvalid = problem(400, "invalid_request", `,"errors":[
	{"field":"dataset","message":"\"app_db.paymnts\" is not a dataset of the data map or of Steward itself (want system.dataset, e.g. app_db.accounts)"},
	{"field":"reason","message":"say why the data is held (the case, the authority's request)"}]`)

type sample struct {
	name        string
	method      string
	path        string
	status      int
	contentType string
	body        string
}

// samples are hand-written from the Go structs the handlers encode
// (internal/api/consent.go, health.go, problem.go; consent.Event,
// consent.PurposeState, receipt.Receipt, receipt.JWKS), not copied from the
// document, so they catch a document that drifted from the code.
func samples(doc []byte) []sample {
	return []sample{
		{"healthz", "GET", "/healthz", 200, jsonCT, `{"status":"ok"}`},
		{"readyz", "GET", "/readyz", 200, jsonCT, `{"status":"ready","policy_revision":"` + rev + `"}`},
		{"readyz not ready", "GET", "/readyz", 503, probCT, problem(503, "unavailable", "")},
		{"metrics", "GET", "/metrics", 200, "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
			"# HELP steward_http_requests_total HTTP requests.\n# TYPE steward_http_requests_total counter\nsteward_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1\n"},
		{"openapi", "GET", "/openapi.json", 200, jsonCT, string(doc)},
		{"jwks", "GET", "/v1/consents/receipts/jwks.json", 200, jsonCT,
			`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"NZKq_8uxiKOtBDVmEHwKBPjlaOQ0HX_VV9TioV4NIGo","use":"sig","alg":"EdDSA"},
				{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","kid":"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}]}`},
		{"record", "POST", "/v1/consents", 201, jsonCT, `{"event":` + eventFull + `,"receipt_url":"/v1/consents/receipts/` + eventID + `"}`},
		{"record invalid", "POST", "/v1/consents", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"linked_subjects[0]","message":"unknown type"}]`)},
		{"record unauthenticated", "POST", "/v1/consents", 401, probCT, problem(401, "unauthenticated", "")},
		{"record forbidden", "POST", "/v1/consents", 403, probCT, problem(403, "forbidden", "")},
		{"record too large", "POST", "/v1/consents", 413, probCT, problem(413, "payload_too_large", "")},
		{"record not json", "POST", "/v1/consents", 415, probCT, problem(415, "unsupported_media_type", "")},
		{"record internal", "POST", "/v1/consents", 500, probCT, problem(500, "internal", "")},
		{"current", "GET", "/v1/consents?subject=email%3Aann%40example.com", 200, "application/json; charset=utf-8",
			`{"subject":"email:ann@example.com","purposes":[
				{"purpose":"analytics","state":"none","gpc":false},
				{"purpose":"marketing","state":"withdrawn","source":"web_settings","notice_version":"2.0","gpc":true,
				 "event_id":"` + eventID + `","updated_at":"2025-03-14T09:26:53.589793Z"}]}`},
		{"history last page", "GET", "/v1/consents/history", 200, jsonCT,
			`{"subject":"oauth:google:1098","events":[` + eventGPC + `],"next_cursor":null}`},
		{"history more", "GET", "/v1/consents/history", 200, jsonCT,
			`{"subject":"email:ann@example.com","events":[` + eventFull + `,` + eventGPC + `],"next_cursor":"MTc0MTk0NDQxMzU4OTc5My4w"}`},
		{"history empty", "GET", "/v1/consents/history", 200, jsonCT, `{"subject":"visitor:abcdefgh","events":[],"next_cursor":null}`},
		{"receipt", "GET", "/v1/consents/receipts/" + eventID, 200, jsonCT, receiptBody},
		{"receipt not found", "GET", "/v1/consents/receipts/" + eventID, 404, probCT, problem(404, "not_found", "")},
		{"receipt bad id", "GET", "/v1/consents/receipts/nope", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"event_id","message":"must be a UUID"}]`)},
		{"check", "GET", "/v1/consent/check?subject=tg%3A1&purpose=broadcast", 200, jsonCT,
			`{"allow":false,"reason":"below_minimum_age","rule":"minor_restricted_purpose","regime":"default","legal_basis":"consent","policy_revision":"` + rev + `"}`},
		{"banner", "GET", "/v1/consent/banner?region=US-CA&lang=ru", 200, "application/json; charset=utf-8", `{"product":"web","name":"Nano Banana Pro",
			"language":"ru","region":"US-CA","region_source":"query","regime":"ccpa","model":"opt_out","gpc":{"signal":true,"honoured":true},
			"notice":{"version":"2.0","major":2,"url":"https://nano-bananapro.com/privacy"},"controller":{"name":"Nano Banana Pro","contact":"support@nano-bananapro.com"},
			"brand":{"accent":"#6d28d9"},"purposes":[{"id":"essential","name":"Строго необходимые","description":"…","essential":true,"default":true,
			"default_reason":"essential","gpc_applies":false,"requires_explicit_consent":false},{"id":"marketing","name":"Маркетинг","description":"…",
			"essential":false,"default":false,"default_reason":"gpc_opt_out","gpc_applies":true,"requires_explicit_consent":false}],"policy_revision":"` + rev + `"}`},
		{"banner nowhere", "GET", "/v1/consent/banner", 200, jsonCT, `{"product":"bot","name":"Bananapics","language":"en","region":"","region_source":"none",
			"regime":"default","model":"opt_in","gpc":{"signal":false,"honoured":true},"notice":{"version":"1.0","major":1,"url":""},
			"controller":{"name":"Bananapics","contact":"blogchikuz@gmail.com"},"brand":{"accent":""},"purposes":[],"policy_revision":"` + rev + `"}`},
		{"banner bad region", "GET", "/v1/consent/banner?region=Germany", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"region","message":"must be an ISO 3166-1 country code"}]`)},
		{"banner from another site", "GET", "/v1/consent/banner", 403, probCT, problem(403, "forbidden", "")},
		{"sdk manifest", "GET", "/sdk/v1/manifest.json", 200, jsonCT, `{"name":"steward-consent","version":"v1","url":"/sdk/v1/steward-consent.0123456789abcdef.js",
			"hash":"0123456789abcdef","integrity":"sha384-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","bytes":13000,"gzip_bytes":6000,
			"typings_url":"/sdk/v1/steward-consent.d.ts","latest_url":"/sdk/v1/steward-consent.js"}`},
		{"sdk script", "GET", "/sdk/v1/steward-consent.0123456789abcdef.js", 200, "text/javascript; charset=utf-8", "(()=>{})();"},
		{"sdk script revalidated", "GET", "/sdk/v1/steward-consent.0123456789abcdef.js", 304, "", ""},
		{"sdk script unknown", "GET", "/sdk/v1/steward-consent.0000000000000000.js", 404, probCT, problem(404, "not_found", "")},
		{"sdk latest", "GET", "/sdk/v1/steward-consent.js", 302, "", ""},
		{"sdk typings", "GET", "/sdk/v1/steward-consent.d.ts", 200, "application/typescript; charset=utf-8", "export interface StewardConsent {}\n"},
		{"audit list", "GET", "/v1/admin/audit?order=asc", 200, jsonCT,
			`{"entries":[` + auditEntry + `,` + strings.Replace(auditEntry, `"details":{}`, `"details":{"name":"web","role":"frontend"}`, 1) + `],"next_cursor":"YToy"}`},
		{"audit list empty", "GET", "/v1/admin/audit", 200, jsonCT, `{"entries":[],"next_cursor":null}`},
		{"audit list forbidden", "GET", "/v1/admin/audit", 403, probCT, problem(403, "forbidden", "")},
		{"audit export jsonl", "GET", "/v1/admin/audit/export", 200, "application/jsonl", strings.ReplaceAll(auditEntry, "\n\t", "") + "\n"},
		{"audit export csv", "GET", "/v1/admin/audit/export?format=csv", 200, "text/csv; charset=utf-8",
			"seq,at,actor,action,target_type,target_id,details,policy_revision,prev_hash,hash\n"},
		{"audit export bad format", "GET", "/v1/admin/audit/export?format=xml", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"format","message":"must be csv or jsonl"}]`)},
		{"audit verify ok", "GET", "/v1/admin/audit/verify", 200, jsonCT,
			`{"ok":true,"entries":1,"head_seq":1,"head_hash":"` + hashHex + `","checkpoints":0,"pending":2,"summary":"OK 1 entries, head 1 ` + hashHex + `"}`},
		{"audit verify empty log", "GET", "/v1/admin/audit/verify", 200, jsonCT,
			`{"ok":true,"entries":0,"head_seq":0,"head_hash":"","checkpoints":0,"pending":0,"summary":"OK 0 entries, head 0 "}`},
		{"audit verify broken", "GET", "/v1/admin/audit/verify", 200, jsonCT,
			`{"ok":false,"entries":4,"head_seq":4,"head_hash":"` + hashHex + `","checkpoints":1,"pending":0,"broken_seq":5,"reason":"hash mismatch: the entry was altered","summary":"FAIL at seq 5: hash mismatch: the entry was altered"}`},
		{"privacy request created", "POST", "/v1/privacy-requests", 201, jsonCT, `{"request":` + privacyRequest + `,"status_token":"sts_x","existing":false}`},
		{"privacy request existing", "POST", "/v1/privacy-requests", 200, jsonCT, `{"request":` + privacyRequest + `,"existing":true}`},
		{"privacy request rate limited", "POST", "/v1/privacy-requests", 429, probCT, problem(429, "rate_limited", "")},
		{"privacy requests list", "GET", "/v1/privacy-requests?status=open", 200, jsonCT, `{"items":[` + privacyRequest + `],"next_cursor":null}`},
		{"privacy requests of one product", "GET", "/v1/privacy-requests?status=open&product=web", 200, jsonCT, `{"items":[` + privacyRequest + `],"next_cursor":null}`},
		{"privacy requests with open review items", "GET", "/v1/privacy-requests?review=open", 200, jsonCT,
			`{"items":[` + strings.Replace(privacyRequest, `"overdue":false`, `"overdue":false,"review_items":2`, 1) + `],"next_cursor":null}`},
		{"privacy request detail", "GET", "/v1/privacy-requests/" + reqID, 200, jsonCT, privacyRequest[:len(privacyRequest)-1] +
			`,"identities":[{"kind":"email","source":"given"}],"plan":{"request_type":"access","regime":"gdpr","policy_revision":"r","identity_kinds":["email"],
			"tasks":[{"system":"app_db","dataset":"users","operation":"access","mode":"automated","fields":[{"field":"email","category":"user.contact.email","action":"include"}]}],
			"retained":[],"unreached":["bot_db"],"revision":2,"identity_count":3},"tasks":[{"id":"` + reqID + `","seq":1,"system":"app_db","dataset":"users","operation":"access","mode":"automated",
			"status":"succeeded","run":1,"attempts":1,"after":[],"fields":[{"field":"email","category":"user.contact.email","action":"include"}],"result":{"records":1}}],
			"timeline":[{"at":"2026-02-03T10:15:30Z","event":"received","to":"received","actor":"key:key_1"}]}`},
		{"privacy request detail with review items", "GET", "/v1/privacy-requests/" + reqID, 200, jsonCT, privacyRequest[:len(privacyRequest)-1] +
			`,"review_items":1,"identities":[{"kind":"email","source":"given"}],"tasks":[{"id":"` + reqID + `","seq":1,"system":"app_db","dataset":"orders",
			"operation":"erase","mode":"automated","status":"succeeded","run":1,"attempts":1,"after":[],"fields":[],
			"result":{"deleted":2,"masked":0,"verified":true,"review":[{"dataset":"addresses","reference":"orders.address_id -> addresses.id","reason":"held_by_others","records":3,"holders":5}]},
			"review":[{"dataset":"addresses","reference":"orders.address_id -> addresses.id","reason":"held_by_others","records":3,"holders":5}]},
			{"id":"` + reqID + `","seq":2,"system":"app_db","dataset":"shipments","operation":"erase","mode":"automated","status":"succeeded","run":1,"attempts":1,"after":[],"fields":[],
			"result":{"deleted":0,"masked":0,"review":[{"dataset":"shipments","reference":"shipments.recipient_id -> users.id","reason":"relationship","records":1,"holders":1}]},
			"review":[{"dataset":"shipments","reference":"shipments.recipient_id -> users.id","reason":"relationship","records":1,"holders":1}],
			"review_acknowledged_at":"2026-02-05T09:00:00Z","review_acknowledged_by":"key:key_1","review_note":"gift shipments stay: the recipient is someone else"}],
			"timeline":[{"at":"2026-02-04T10:15:30Z","event":"review_items_found","actor":"system","note":"3 record(s) in 1 item(s) were left for staff review: they are not the person's alone"}]}`},
		{"privacy request report", "GET", "/v1/privacy-requests/" + reqID + "/report", 200, jsonCT,
			`{"request_id":"` + reqID + `","type":"erasure","status":"completed","regime":"gdpr","received_at":"2026-02-03T10:15:30Z",
			"completed_at":"2026-02-04T10:15:30Z","policy_revision":"r","unreached":[],"complete":true,"verified":true,
			"systems":[{"system":"stripe","deleted":1,"masked":2,"retained":[{"dataset":"charges","field":"amount","basis":"accounting","until":"5 years","records":3}],
			"notes":["Stripe keeps transaction records"],"datasets":[{"dataset":"customers","operation":"erase","mode":"automated","status":"succeeded","deleted":0,"masked":2,"verified":true}]}]}`},
		{"privacy request report with review items", "GET", "/v1/privacy-requests/" + reqID + "/report", 200, jsonCT,
			`{"request_id":"` + reqID + `","type":"erasure","status":"completed","regime":"gdpr","received_at":"2026-02-03T10:15:30Z",
			"completed_at":"2026-02-04T10:15:30Z","policy_revision":"r","unreached":[],"complete":true,"verified":true,"review_records":3,"review_open":1,
			"systems":[{"system":"app_db","deleted":2,"masked":0,"retained":[],"review_records":3,
			"datasets":[{"dataset":"orders","operation":"erase","mode":"automated","status":"succeeded","deleted":2,"masked":0,"verified":true,
			"review":[{"dataset":"addresses","reference":"orders.address_id -> addresses.id","reason":"held_by_others","records":3,"holders":5}]}]}]}`},
		{"privacy request not found", "GET", "/v1/privacy-requests/" + reqID, 404, probCT, problem(404, "not_found", "")},
		{"privacy request identities", "POST", "/v1/privacy-requests/" + reqID + "/identities", 200, jsonCT, `{"identities":["email:ann@example.com"]}`},
		{"privacy request verify", "POST", "/v1/privacy-requests/" + reqID + "/verify", 200, jsonCT, `{"request":` + privacyRequest + `,"status_token":"sts_y"}`},
		{"privacy request verify conflict", "POST", "/v1/privacy-requests/" + reqID + "/verify", 409, probCT, problem(409, "conflict", "")},
		{"privacy request resend", "POST", "/v1/privacy-requests/" + reqID + "/verification-code", 202, jsonCT, `{"sent":true}`},
		{"privacy request verified by challenge login", "POST", "/v1/privacy-requests/" + reqID + "/verification/challenge-login", 200, jsonCT,
			`{"request":` + privacyRequestHigh + `,"status_token":"sts_z"}`},
		{"privacy request challenge login refused", "POST", "/v1/privacy-requests/" + reqID + "/verification/challenge-login", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"token","message":"has already been used: ask the product for a new one"}]`)},
		{"privacy request verified by a recent invoice", "POST", "/v1/privacy-requests/" + reqID + "/verification/invoice", 200, jsonCT, privacyRequestHigh},
		{"privacy request invoice attempts spent", "POST", "/v1/privacy-requests/" + reqID + "/verification/invoice", 429, probCT, problem(429, "rate_limited", "")},
		{"privacy request invoice check unavailable", "POST", "/v1/privacy-requests/" + reqID + "/verification/invoice", 503, probCT, problem(503, "unavailable", "")},
		{"privacy request signed instruction reviewed", "POST", "/v1/privacy-requests/" + reqID + "/documents/agent_authorization/review", 200, jsonCT, privacyRequestHigh},
		{"privacy request signed instruction reviewed twice", "POST", "/v1/privacy-requests/" + reqID + "/documents/agent_authorization/review", 409, probCT, problem(409, "conflict", "")},
		{"privacy request package released", "POST", "/v1/privacy-requests/" + reqID + "/release-package", 200, jsonCT,
			strings.Replace(privacyRequestHigh, `"status":"verified"`, `"status":"completed","package_review":true`, 1)},
		{"privacy request no package held", "POST", "/v1/privacy-requests/" + reqID + "/release-package", 409, probCT, problem(409, "conflict", "")},
		{"privacy request status awaiting a second factor", "GET", "/v1/privacy-requests/" + reqID + "/status", 200, jsonCT,
			`{"id":"` + reqID + `","type":"access","status":"identity_pending","received_at":"2026-02-03T10:15:30Z","due_at":"2026-03-03T10:15:30Z","extended":false,"tasks_done":0,"tasks_total":0,
			"awaiting_second_factor":true,"second_factors":["recent_invoice","challenge_login"],"product":"web"}`},
		{"privacy request status", "GET", "/v1/privacy-requests/" + reqID + "/status", 200, jsonCT,
			`{"id":"` + reqID + `","type":"access","status":"in_progress","received_at":"2026-02-03T10:15:30Z","due_at":"2026-03-03T10:15:30Z","extended":false,"tasks_done":1,"tasks_total":3}`},
		{"privacy request approve", "POST", "/v1/privacy-requests/" + reqID + "/approve", 200, jsonCT, privacyRequest},
		{"privacy request deny", "POST", "/v1/privacy-requests/" + reqID + "/deny", 200, jsonCT, privacyRequest},
		{"privacy request extend", "POST", "/v1/privacy-requests/" + reqID + "/extend", 409, probCT, problem(409, "conflict", "")},
		{"privacy request cancel", "POST", "/v1/privacy-requests/" + reqID + "/cancel", 200, jsonCT, privacyRequest},
		{"privacy request pause", "POST", "/v1/privacy-requests/" + reqID + "/pause", 200, jsonCT, privacyRequest},
		{"privacy request resume", "POST", "/v1/privacy-requests/" + reqID + "/resume", 200, jsonCT, privacyRequest},
		{"privacy request retry planning", "POST", "/v1/privacy-requests/" + reqID + "/retry-planning", 409, probCT, problem(409, "conflict", "")},
		{"privacy request re-plan", "POST", "/v1/privacy-requests/" + reqID + "/replan", 200, jsonCT, privacyRequestReplanned},
		{"privacy request re-plan of a request that found records", "POST", "/v1/privacy-requests/" + reqID + "/replan", 409, probCT, problem(409, "conflict", "")},
		{"privacy request paused for staff", "POST", "/v1/privacy-requests/" + reqID + "/pause", 200, jsonCT, privacyRequestPaused},
		{"privacy request package for staff", "GET", "/v1/privacy-requests/" + reqID + "/package", 200, "application/zip", "PK\x03\x04"},
		{"privacy request without a package", "GET", "/v1/privacy-requests/" + reqID + "/package", 404, probCT, problem(404, "not_found", "")},
		{"privacy request package for an auditor", "GET", "/v1/privacy-requests/" + reqID + "/package", 403, probCT, problem(403, "forbidden", "")},
		{"privacy request recipients", "GET", "/v1/privacy-requests/" + reqID + "/recipients", 200, jsonCT,
			`{"recipients":[{"system":"sentry","name":"Sentry","method":"staff","status":"done","done_at":"2026-02-03T10:15:30Z","done_by":"key:k1","note":"emailed"},{"system":"resend","name":"Resend","method":"email","status":"queued"}]}`},
		{"privacy request recipient told", "POST", "/v1/privacy-requests/" + reqID + "/recipients/sentry/told", 200, jsonCT,
			`{"system":"sentry","name":"Sentry","method":"staff","status":"done","done_at":"2026-02-03T10:15:30Z","done_by":"key:k1","note":"emailed their DPO"}`},
		{"privacy request recipient not pending", "POST", "/v1/privacy-requests/" + reqID + "/recipients/sentry/told", 404, probCT, problem(404, "not_found", "")},
		{"privacy request agent authorization", "GET", "/v1/privacy-requests/" + reqID + "/documents/agent_authorization", 200, "application/pdf", "%PDF-1.7"},
		{"privacy request without the document", "GET", "/v1/privacy-requests/" + reqID + "/documents/agent_authorization", 404, probCT, problem(404, "not_found", "")},
		{"privacy request retry task", "POST", "/v1/privacy-requests/" + reqID + "/tasks/" + reqID + "/retry", 200, jsonCT, privacyRequest},
		{"privacy request complete task", "POST", "/v1/privacy-requests/" + reqID + "/tasks/" + reqID + "/complete", 200, jsonCT, privacyRequest},
		{"privacy request acknowledge review", "POST", "/v1/privacy-requests/" + reqID + "/tasks/" + reqID + "/acknowledge-review", 200, jsonCT,
			strings.Replace(privacyRequest, `"overdue":false`, `"overdue":false,"review_items":0`, 1)},
		{"privacy request acknowledge review twice", "POST", "/v1/privacy-requests/" + reqID + "/tasks/" + reqID + "/acknowledge-review", 409, probCT, problem(409, "conflict", "")},
		{"privacy request acknowledge review without a note", "POST", "/v1/privacy-requests/" + reqID + "/tasks/" + reqID + "/acknowledge-review", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"note","message":"required: what was decided about the records"}]`)},
		{"export download", "GET", "/v1/exports/sxp_abc", 200, "application/zip", "PK\x03\x04"},
		{"export link expired", "GET", "/v1/exports/sxp_abc", 410, probCT, problem(410, "gone", "")},
		{"export link invalid", "GET", "/v1/exports/sxp_abc", 404, probCT, problem(404, "not_found", "")},
		{"creem webhook", "POST", "/v1/webhooks/creem", 200, jsonCT, `{"received":true}`},
		{"creem webhook bad signature", "POST", "/v1/webhooks/creem", 401, probCT, problem(401, "unauthenticated", "")},
		{"check batch", "POST", "/v1/consent/check", 200, jsonCT,
			`{"policy_revision":"` + rev + `","results":[{"allow":true,"reason":"opt_out_default","rule":"opt_out_regime_default","regime":"ccpa","legal_basis":"consent"},
				{"allow":false,"reason":"gpc_opt_out","rule":"stored_refusal","regime":"us_state","legal_basis":"consent"}]}`},
		{"retention plan", "GET", "/v1/retention/plan", 200, jsonCT, retentionPlan},
		{"retention plan of one dataset", "GET", "/v1/retention/plan?dataset=app_db.payments", 200, jsonCT,
			`{"rules":[` + strings.SplitN(strings.TrimPrefix(retentionPlan, `{"rules":[`), "},", 2)[0] + `}]}`},
		{"retention plan empty", "GET", "/v1/retention/plan", 200, jsonCT, `{"rules":[]}`},
		{"retention plan no such rule", "GET", "/v1/retention/plan?dataset=app_db.users", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"dataset","message":"\"app_db.users\" has no retention period to enforce"}]`)},
		{"retention plan not enabled", "GET", "/v1/retention/plan", 404, probCT, problem(404, "not_found", "")},
		{"retention plan forbidden", "GET", "/v1/retention/plan", 403, probCT, problem(403, "forbidden", "")},
		{"retention run started", "POST", "/v1/retention/runs", 202, jsonCT, retentionRunStarted},
		{"retention run started, nothing to sweep", "POST", "/v1/retention/runs", 202, jsonCT,
			`{"id":"` + runID + `","trigger":"api","actor":"key:key_1","dry_run":false,"at":"2026-03-04T14:22:05Z","status":"completed",
			"finished_at":"2026-03-04T14:22:05.01Z","policy_revision":"` + rev + `","datasets":[]}`},
		{"retention run bad body", "POST", "/v1/retention/runs", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"dry_run","message":"must be true or false, not string"}]`)},
		{"retention run without dry_run", "POST", "/v1/retention/runs", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"dry_run","message":"required: true to plan only, false to delete and anonymize for real"}]`)},
		{"retention run unauthenticated", "POST", "/v1/retention/runs", 401, probCT, problem(401, "unauthenticated", "")},
		{"retention run forbidden", "POST", "/v1/retention/runs", 403, probCT, problem(403, "forbidden", "")},
		{"retention run not json", "POST", "/v1/retention/runs", 415, probCT, problem(415, "unsupported_media_type", "")},
		{"retention runs", "GET", "/v1/retention/runs?limit=5", 200, jsonCT, `{"runs":[` + retentionRunGoing + `,` + retentionRunDone + `]}`},
		{"retention runs none", "GET", "/v1/retention/runs", 200, jsonCT, `{"runs":[]}`},
		{"retention runs bad limit", "GET", "/v1/retention/runs?limit=0", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"limit","message":"want a whole number from 1 to 100"}]`)},
		{"retention run", "GET", "/v1/retention/runs/" + runID, 200, jsonCT, retentionRunDone},
		{"retention run failed", "GET", "/v1/retention/runs/" + runID, 200, jsonCT,
			strings.Replace(strings.Replace(retentionRunGoing, `"status":"running","policy_revision"`, `"status":"failed","finished_at":"2026-03-04T15:01:00Z","policy_revision"`, 1),
				`"status":"running","matched":null`, `"status":"failed","matched":null`, 1)},
		{"retention run not found", "GET", "/v1/retention/runs/nope", 404, probCT, problem(404, "not_found", "")},
		{"legal holds", "GET", "/v1/legal-holds", 200, jsonCT, `{"holds":[` + holdDataset + `,` + holdCategory + `]}`},
		{"legal holds all", "GET", "/v1/legal-holds?all=true", 200, jsonCT,
			`{"holds":[` + holdDataset + `,` + holdCategory + `,` + holdLifted + `,` + holdExpired + `]}`},
		{"legal holds none", "GET", "/v1/legal-holds", 200, jsonCT, `{"holds":[]}`},
		{"legal holds bad all", "GET", "/v1/legal-holds?all=yes", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"all","message":"want true or false"}]`)},
		{"legal hold placed", "POST", "/v1/legal-holds", 201, jsonCT, holdDataset},
		{"legal hold placed on a subject", "POST", "/v1/legal-holds", 201, jsonCT,
			`{"id":"` + holdID + `","scope":"subject","subject_kind":"email","reason":"Litigation hold","created_by":"key:key_1",
			"created_at":"2026-03-04T14:30:12Z","expires_at":"2027-03-04T00:00:00Z","active":true}`},
		{"legal hold invalid", "POST", "/v1/legal-holds", 400, probCT, holdInvalid},
		{"legal hold not exactly one target", "POST", "/v1/legal-holds", 400, probCT, problem(400, "invalid_request", "")},
		{"legal hold forbidden", "POST", "/v1/legal-holds", 403, probCT, problem(403, "forbidden", "")},
		{"legal hold not json", "POST", "/v1/legal-holds", 415, probCT, problem(415, "unsupported_media_type", "")},
		{"legal hold", "GET", "/v1/legal-holds/" + holdID, 200, jsonCT, holdCategory},
		{"legal hold not found", "GET", "/v1/legal-holds/" + holdID, 404, probCT, problem(404, "not_found", "")},
		{"legal hold lifted", "POST", "/v1/legal-holds/" + holdID + "/lift", 200, jsonCT, holdLifted},
		{"legal hold lift without reason", "POST", "/v1/legal-holds/" + holdID + "/lift", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"reason","message":"say why the hold ends (1 to 2000 characters)"}]`)},
		{"legal hold lifted twice", "POST", "/v1/legal-holds/" + holdID + "/lift", 409, probCT, problem(409, "conflict", "")},
		{"legal hold lift unknown", "POST", "/v1/legal-holds/" + holdID + "/lift", 404, probCT, problem(404, "not_found", "")},
		// Issue 19: the consent check answers restricted with the request
		// that set it; a purpose the product lacks is a 400, not an answer.
		{"check restricted", "GET", "/v1/consent/check?subject=email%3Aann%40example.com&purpose=marketing", 200, jsonCT,
			`{"allow":false,"reason":"restricted","rule":"processing_restricted","regime":"gdpr","legal_basis":"consent","policy_revision":"` + rev + `",
			"restriction_id":"` + restrictionID + `","request_id":"7f3c9a1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b"}`},
		{"check purpose not offered", "GET", "/v1/consent/check?subject=tg%3A1&purpose=marketing", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"purpose","message":"\"marketing\" is not a purpose of the bot product; its purposes: essential, analytics, broadcast, model_training"}]`)},
		{"record unknown notice", "POST", "/v1/consents", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"notice_version","message":"\"9.9\" is not a version of the web product's notice; known: 2.0 (GET /v1/notices/web)"}]`)},
		{"notices", "GET", "/v1/notices/web", 200, jsonCT, `{"product":"web","current":"2.0","versions":[` + noticeWeb + `]}`},
		{"notices unknown product", "GET", "/v1/notices/tv", 404, probCT, problem(404, "not_found", "")},
		{"notice", "GET", "/v1/notices/web/2.0?lang=ru", 200, jsonCT,
			strings.TrimSuffix(noticeWeb, "}") + `,"language":"en","text":"Privacy Policy\nWe are committed to protecting your privacy."}`},
		{"notice unknown version", "GET", "/v1/notices/web/7.0", 404, probCT, problem(404, "not_found", "")},
		{"notice bad query", "GET", "/v1/notices/web/2.0?language=ru", 400, probCT, problem(400, "invalid_request", "")},
		{"notice announced", "POST", "/v1/notices/web/3.0/announce", 201, jsonCT,
			`{"product":"web","version":"3.0","announced_at":"2026-03-04T14:30:12Z","announced_by":"key:key_1","subjects":3,"emails":1,"telegrams":1,"unreachable":1}`},
		{"notice announced twice", "POST", "/v1/notices/web/3.0/announce", 409, probCT, problem(409, "conflict", "")},
		{"notice announce forbidden", "POST", "/v1/notices/web/3.0/announce", 403, probCT, problem(403, "forbidden", "")},
		{"notice announce unknown", "POST", "/v1/notices/web/9.0/announce", 404, probCT, problem(404, "not_found", "")},
		{"restrictions", "GET", "/v1/restrictions?subject=email%3Aann%40example.com", 200, jsonCT,
			`{"subject":"email:ann@example.com","restricted":true,"restrictions":[` + restrictionActive + `,` + restrictionLifted + `]}`},
		{"restrictions none", "GET", "/v1/restrictions?subject=tg%3A1&active=true", 200, jsonCT, `{"subject":"tg:1","restricted":false,"restrictions":[]}`},
		{"restrictions without subject", "GET", "/v1/restrictions", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"subject","message":"required, as type:value (e.g. tg:123456 or email:ann@example.com)"}]`)},
		{"restrictions forbidden", "GET", "/v1/restrictions?subject=tg%3A1", 403, probCT, problem(403, "forbidden", "")},
		{"restriction", "GET", "/v1/restrictions/" + restrictionID, 200, jsonCT, restrictionActive},
		{"restriction not found", "GET", "/v1/restrictions/" + restrictionID, 404, probCT, problem(404, "not_found", "")},
		{"restriction lifted", "POST", "/v1/restrictions/" + restrictionID + "/lift", 200, jsonCT, restrictionLifted},
		{"restriction lift without reason", "POST", "/v1/restrictions/" + restrictionID + "/lift", 400, probCT,
			problem(400, "invalid_request", `,"errors":[{"field":"reason","message":"say why the restriction ends (1 to 2000 characters)"}]`)},
		{"restriction lifted twice", "POST", "/v1/restrictions/" + restrictionID + "/lift", 409, probCT, problem(409, "conflict", "")},
		{"webhook endpoint created", "POST", "/v1/webhooks/endpoints", 201, jsonCT, strings.TrimSuffix(webhookEndpoint, "}") + `,"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`},
		{"webhook endpoint refused", "POST", "/v1/webhooks/endpoints", 400, probCT, problem(400, "invalid_request", "")},
		{"webhook endpoints", "GET", "/v1/webhooks/endpoints", 200, jsonCT, `{"endpoints":[` + webhookEndpoint + `]}`},
		{"webhook endpoints forbidden", "GET", "/v1/webhooks/endpoints", 403, probCT, problem(403, "forbidden", "")},
		{"webhook endpoint deleted", "DELETE", "/v1/webhooks/endpoints/" + restrictionID, 204, "", ""},
		{"webhook endpoint not found", "DELETE", "/v1/webhooks/endpoints/" + restrictionID, 404, probCT, problem(404, "not_found", "")},
		{"webhook secret rotated", "POST", "/v1/webhooks/endpoints/" + restrictionID + "/rotate-secret", 200, jsonCT,
			strings.TrimSuffix(webhookEndpoint, "}") + `,"previous_secret_expires_at":"2026-03-05T14:30:12Z","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`},
		{"webhook deliveries", "GET", "/v1/webhooks/endpoints/" + restrictionID + "/deliveries?limit=10", 200, jsonCT, `{"deliveries":[` + webhookDelivery + `]}`},
		{"webhook deliveries bad limit", "GET", "/v1/webhooks/endpoints/" + restrictionID + "/deliveries?limit=0", 400, probCT, problem(400, "invalid_request", "")},
		{"webhook delivery replayed", "POST", "/v1/webhooks/deliveries/" + restrictionID + "/replay", 202, jsonCT, webhookDelivery},
		{"webhook delivery replay disabled", "POST", "/v1/webhooks/deliveries/" + restrictionID + "/replay", 409, probCT, problem(409, "conflict", "")},
	}
}

const (
	restrictionID     = "3b0d9f6e-7c1a-5e2b-8d4f-0a9c6e1b2d37"
	restrictionActive = `{"id":"` + restrictionID + `","request_id":"7f3c9a1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b","entries":["*.*","app.users"],"identities":2,
		"restricted_at":"2026-02-20T09:12:44.503Z","active":true}`
	restrictionLifted = `{"id":"` + restrictionID + `","request_id":"7f3c9a1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b","entries":["app.orders"],"identities":1,
		"restricted_at":"2025-12-01T08:00:00Z","active":false,"lifted_at":"2026-01-10T10:05:31Z","lifted_by":"key:key_1","lift_reason":"Accuracy verified"}`
	webhookEndpoint = `{"id":"` + restrictionID + `","url":"https://bot.example.com/steward","description":"bot opt-outs","event_types":["consent.changed"],
		"include_identities":true,"allow_loopback":false,"enabled":true,"created_at":"2026-03-04T14:30:12Z","updated_at":"2026-03-04T14:30:12Z"}`
	webhookDelivery = `{"id":"` + restrictionID + `","endpoint_id":"` + restrictionID + `","message_id":"msg_0f1e2d3c4b5a69788796a5b4c3d2e1f0",
		"event_type":"consent.changed","status":"delivered","attempts":3,"replays":0,"created_at":"2026-03-04T14:30:12Z",
		"last_attempt_at":"2026-03-04T14:31:12Z","delivered_at":"2026-03-04T14:31:12Z","attempt_log":[
		{"attempted_at":"2026-03-04T14:30:12Z","status_code":500,"latency_ms":12,"error":"webhook: HTTP 500","response_excerpt":"oops"},
		{"attempted_at":"2026-03-04T14:30:40Z","latency_ms":10000,"error":"webhook: context deadline exceeded"},
		{"attempted_at":"2026-03-04T14:31:12Z","status_code":204,"latency_ms":9}]}`
	noticeWeb = `{"product":"web","version":"2.0","major":2,"effective":"2025-12-01","change":"major","summary":"The current privacy policy.","languages":["en"],"current":true}`
)

func TestDocumentLoads(t *testing.T) {
	d, _ := loadDoc(t)
	want := []string{
		"DELETE /v1/webhooks/endpoints/{id}",
		"GET /healthz", "GET /metrics", "GET /openapi.json", "GET /readyz",
		"GET /sdk/v1/manifest.json", "GET /sdk/v1/steward-consent.d.ts", "GET /sdk/v1/steward-consent.js", "GET /sdk/v1/steward-consent.{hash}.js",
		"GET /v1/admin/audit", "GET /v1/admin/audit/export", "GET /v1/admin/audit/verify",
		"GET /v1/consent/banner", "GET /v1/consent/check", "GET /v1/consents", "GET /v1/consents/history",
		"GET /v1/consents/receipts/jwks.json", "GET /v1/consents/receipts/{event_id}", "GET /v1/exports/{token}",
		"GET /v1/legal-holds", "GET /v1/legal-holds/{id}",
		"GET /v1/notices/{product}", "GET /v1/notices/{product}/{version}",
		"GET /v1/privacy-requests", "GET /v1/privacy-requests/{id}", "GET /v1/privacy-requests/{id}/documents/{kind}", "GET /v1/privacy-requests/{id}/package", "GET /v1/privacy-requests/{id}/recipients", "GET /v1/privacy-requests/{id}/report", "GET /v1/privacy-requests/{id}/status",
		"GET /v1/restrictions", "GET /v1/restrictions/{id}",
		"GET /v1/retention/plan", "GET /v1/retention/runs", "GET /v1/retention/runs/{id}",
		"GET /v1/webhooks/endpoints", "GET /v1/webhooks/endpoints/{id}/deliveries",
		"POST /v1/consent/check", "POST /v1/consents", "POST /v1/legal-holds", "POST /v1/legal-holds/{id}/lift",
		"POST /v1/notices/{product}/{version}/announce",
		"POST /v1/privacy-requests", "POST /v1/privacy-requests/{id}/approve", "POST /v1/privacy-requests/{id}/cancel",
		"POST /v1/privacy-requests/{id}/deny", "POST /v1/privacy-requests/{id}/documents/{kind}/review", "POST /v1/privacy-requests/{id}/extend", "POST /v1/privacy-requests/{id}/identities",
		"POST /v1/privacy-requests/{id}/pause", "POST /v1/privacy-requests/{id}/recipients/{system}/told", "POST /v1/privacy-requests/{id}/release-package", "POST /v1/privacy-requests/{id}/replan", "POST /v1/privacy-requests/{id}/resume",
		"POST /v1/privacy-requests/{id}/retry-planning",
		"POST /v1/privacy-requests/{id}/tasks/{task_id}/acknowledge-review",
		"POST /v1/privacy-requests/{id}/tasks/{task_id}/complete", "POST /v1/privacy-requests/{id}/tasks/{task_id}/retry",
		"POST /v1/privacy-requests/{id}/verification-code", "POST /v1/privacy-requests/{id}/verification/challenge-login",
		"POST /v1/privacy-requests/{id}/verification/invoice", "POST /v1/privacy-requests/{id}/verify",
		"POST /v1/restrictions/{id}/lift",
		"POST /v1/retention/runs", "POST /v1/webhooks/creem",
		"POST /v1/webhooks/deliveries/{id}/replay", "POST /v1/webhooks/endpoints", "POST /v1/webhooks/endpoints/{id}/rotate-secret",
	}
	if got := d.Operations(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Operations() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The literal jwks.json path must win over the {event_id} template.
	for path, want := range map[string]string{
		"/v1/consents/receipts/jwks.json":  "GET /v1/consents/receipts/jwks.json",
		"/v1/consents/receipts/" + eventID: "GET /v1/consents/receipts/{event_id}",
		"/v1/consents/receipts/jwks.jsonx": "GET /v1/consents/receipts/{event_id}",
	} {
		if got, err := d.Operation("GET", path); got != want || err != nil {
			t.Errorf("Operation(GET, %s) = %q, %v; want %q", path, got, err, want)
		}
	}
}

func TestSamplesValidate(t *testing.T) {
	d, raw := loadDoc(t)
	covered := map[string]bool{}
	for _, s := range samples(raw) {
		if err := d.Validate(s.method, s.path, s.status, s.contentType, []byte(s.body)); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		op, err := d.Operation(s.method, s.path)
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		covered[op] = true
	}
	// A new operation must come with a sample.
	for _, op := range d.Operations() {
		if !covered[op] {
			t.Errorf("no sample exercises %s", op)
		}
	}
}

// TestDocumentExamplesValidate checks that every response example in the
// document matches its own schema: a stale example misleads the reader of
// the docs as much as a wrong schema.
func TestDocumentExamplesValidate(t *testing.T) {
	d, raw := loadDoc(t)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for tmpl, item := range doc["paths"].(map[string]any) {
		concrete := strings.ReplaceAll(tmpl, "{event_id}", eventID)
		for method, op := range item.(map[string]any) {
			for status, resp := range op.(map[string]any)["responses"].(map[string]any) {
				r := resp.(map[string]any)
				if ref, ok := r["$ref"].(string); ok {
					r = doc["components"].(map[string]any)["responses"].(map[string]any)[strings.TrimPrefix(ref, "#/components/responses/")].(map[string]any)
				}
				content, _ := r["content"].(map[string]any)
				for mt, m := range content {
					ex, ok := m.(map[string]any)["example"]
					if !ok {
						continue
					}
					var body []byte
					if s, ok := ex.(string); ok && !strings.HasSuffix(mt, "json") {
						body = []byte(s)
					} else {
						body, _ = json.Marshal(ex)
					}
					code, _ := strconv.Atoi(status)
					if err := d.Validate(method, concrete, code, mt, body); err != nil {
						t.Errorf("example of %s %s %s %s: %v", strings.ToUpper(method), tmpl, status, mt, err)
					}
					n++
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d response examples found; expected one per documented response", n)
	}
}

func TestValidateRejects(t *testing.T) {
	d, _ := loadDoc(t)
	checkOK := `{"allow":true,"reason":"granted","rule":"stored_grant","regime":"gdpr","legal_basis":"consent","policy_revision":"` + rev + `"}`
	if err := d.Validate("GET", "/v1/consent/check", 200, jsonCT, []byte(checkOK)); err != nil {
		t.Fatalf("baseline body must validate: %v", err)
	}
	cases := []struct {
		name        string
		method      string
		path        string
		status      int
		contentType string
		body        string
		want        []string // every one must appear in the error
	}{
		{"extra property", "GET", "/v1/consent/check", 200, jsonCT,
			strings.Replace(checkOK, `{`, `{"debug":true,`, 1),
			[]string{"GET /v1/consent/check", "status 200", "additional properties 'debug'", "CheckResult"}},
		{"extra property nested", "POST", "/v1/consents", 201, jsonCT,
			`{"event":` + strings.Replace(eventFull, `{`, `{"subject_hash":"ab",`, 1) + `,"receipt_url":"/v1/consents/receipts/` + eventID + `"}`,
			[]string{"POST /v1/consents", "status 201", "'/event'", "subject_hash"}},
		{"missing required", "GET", "/v1/consent/check", 200, jsonCT,
			strings.Replace(checkOK, `,"policy_revision":"`+rev+`"`, ``, 1),
			[]string{"missing property 'policy_revision'"}},
		{"missing next_cursor", "GET", "/v1/consents/history", 200, jsonCT,
			`{"subject":"tg:1","events":[]}`,
			[]string{"GET /v1/consents/history", "next_cursor"}},
		{"wrong type", "GET", "/v1/consent/check", 200, jsonCT,
			strings.Replace(checkOK, `"allow":true`, `"allow":"true"`, 1),
			[]string{"'/allow'", "want boolean"}},
		{"wrong type nested", "GET", "/v1/consents/history", 200, jsonCT,
			`{"subject":"tg:1","events":[` + strings.Replace(eventGPC, `"gpc":true`, `"gpc":1`, 1) + `],"next_cursor":null}`,
			[]string{"'/events/0/gpc'", "want boolean"}},
		{"problem without request_id", "POST", "/v1/consents", 413, probCT,
			strings.Replace(problem(413, "payload_too_large", ""), `,"request_id":"5f2a9c1e7b3d-1a"`, ``, 1),
			[]string{"POST /v1/consents", "status 413", "missing property 'request_id'"}},
		{"null where not nullable", "GET", "/v1/consents", 200, jsonCT,
			`{"subject":"tg:1","purposes":null}`,
			[]string{"'/purposes'", "want array"}},
		{"bad date-time", "GET", "/v1/consents/history", 200, jsonCT,
			`{"subject":"tg:1","events":[` + strings.Replace(eventGPC, `2025-03-10T18:02:11Z`, `2025-03-10 18:02:11`, 1) + `],"next_cursor":null}`,
			[]string{"'/events/0/recorded_at'", "date-time"}},
		{"unknown enum value", "GET", "/v1/consents", 200, jsonCT,
			`{"subject":"tg:1","purposes":[{"purpose":"ads","state":"none","gpc":false}]}`,
			[]string{"'/purposes/0/purpose'", "must be one of"}},
		{"problem with wrong status", "GET", "/v1/consents/receipts/" + eventID, 404, probCT,
			problem(400, "invalid_request", ""),
			[]string{"status 404", "'/status'", "'/code'"}},
		{"undeclared status", "GET", "/healthz", 500, probCT, problem(500, "internal", ""),
			[]string{"GET /healthz", "status 500", "not documented", "documented: 200"}},
		{"undeclared status on authed route", "GET", "/v1/consents", 404, probCT, problem(404, "not_found", ""),
			[]string{"GET /v1/consents", "status 404", "not documented", "401"}},
		{"undeclared content type", "GET", "/v1/consent/check", 200, "text/html; charset=utf-8", checkOK,
			[]string{"status 200", `"text/html" is not documented`, "application/json"}},
		{"error sent as plain json", "GET", "/v1/consent/check", 400, jsonCT, problem(400, "invalid_request", ""),
			[]string{"status 400", `"application/json" is not documented`, "application/problem+json"}},
		{"no content type", "GET", "/healthz", 200, "", `{"status":"ok"}`,
			[]string{"no Content-Type"}},
		{"not json", "GET", "/healthz", 200, jsonCT, `{"status":"ok"`,
			[]string{"GET /healthz", "not valid JSON"}},
		{"trailing data", "GET", "/healthz", 200, jsonCT, `{"status":"ok"} {}`,
			[]string{"not valid JSON"}},
		{"unknown path", "GET", "/v1/consent", 200, jsonCT, `{}`,
			[]string{"GET /v1/consent", "no path in the document matches"}},
		{"undocumented method", "DELETE", "/v1/consents", 200, jsonCT, `{}`,
			[]string{"DELETE /v1/consents", "method is not documented", "GET /v1/consents", "POST /v1/consents"}},
		{"receipt body at the jwks path", "GET", "/v1/consents/receipts/jwks.json", 200, jsonCT, receiptBody,
			[]string{"GET /v1/consents/receipts/jwks.json", "JWKS"}},
		{"unknown dataset status", "GET", "/v1/retention/runs/" + runID, 200, jsonCT,
			strings.Replace(retentionRunDone, `"status":"succeeded"`, `"status":"done"`, 1),
			[]string{"GET /v1/retention/runs/{id}", "'/datasets/0/status'", "must be one of"}},
		{"matched absent instead of null", "GET", "/v1/retention/runs/" + runID, 200, jsonCT,
			strings.Replace(retentionRunStarted, `"matched":null,`, ``, 1),
			[]string{"'/datasets/0'", "missing property 'matched'"}},
		{"count as a string", "GET", "/v1/retention/runs", 200, jsonCT,
			`{"runs":[` + strings.Replace(retentionRunDone, `"deleted":409`, `"deleted":"409"`, 1) + `]}`,
			[]string{"'/runs/0/datasets/0/deleted'", "want integer"}},
		{"finished run without finished_at", "GET", "/v1/retention/runs/" + runID, 200, jsonCT,
			strings.Replace(retentionRunDone, `"finished_at":"2026-03-01T03:00:41.207Z",`, ``, 1),
			[]string{"missing property 'finished_at'", "RetentionRun"}},
		{"unknown trigger", "POST", "/v1/retention/runs", 202, jsonCT,
			strings.Replace(retentionRunStarted, `"trigger":"api"`, `"trigger":"manual"`, 1),
			[]string{"'/trigger'", "must be one of"}},
		{"run dataset not system.dataset", "POST", "/v1/retention/runs", 202, jsonCT,
			strings.Replace(retentionRunStarted, `"dataset":"app_db.payments"`, `"dataset":"payments"`, 1),
			[]string{"'/dataset'", "does not match pattern"}},
		{"plan item with the run's counts", "GET", "/v1/retention/plan", 200, jsonCT,
			strings.Replace(retentionPlan, `"due":412,"held":3}`, `"due":412,"held":3,"matched":412}`, 1),
			[]string{"'/rules/0'", "additional properties 'matched'"}},
		{"plan item status of a run", "GET", "/v1/retention/plan", 200, jsonCT,
			strings.Replace(retentionPlan, `"status":"due"`, `"status":"succeeded"`, 1),
			[]string{"'/rules/0/status'", "must be one of"}},
		{"plan item without held", "GET", "/v1/retention/plan", 200, jsonCT,
			strings.Replace(retentionPlan, `"due":412,"held":3}`, `"due":412}`, 1),
			[]string{"'/rules/0'", "missing property 'held'"}},
		{"hold showing its subject", "GET", "/v1/legal-holds/" + holdID, 200, jsonCT,
			strings.Replace(holdLifted, `"subject_kind":"oauth:google"`, `"subject_kind":"oauth:google","subject":"oauth:google:1098"`, 1),
			[]string{"additional properties 'subject'"}},
		{"hold without active", "GET", "/v1/legal-holds/" + holdID, 200, jsonCT,
			strings.Replace(holdDataset, `,"active":true`, ``, 1),
			[]string{"missing property 'active'"}},
		{"dataset hold without its system", "POST", "/v1/legal-holds", 201, jsonCT,
			strings.Replace(holdDataset, `"system":"app_db",`, ``, 1),
			[]string{"POST /v1/legal-holds", "status 201", "missing property 'system'"}},
		{"lifted hold without lift_reason", "POST", "/v1/legal-holds/" + holdID + "/lift", 200, jsonCT,
			strings.Replace(holdLifted, `,"lift_reason":"Case settled and closed"`, ``, 1),
			[]string{"lift_reason"}},
		{"unknown hold scope", "GET", "/v1/legal-holds", 200, jsonCT,
			`{"holds":[` + strings.Replace(holdDataset, `"scope":"dataset"`, `"scope":"system"`, 1) + `]}`,
			[]string{"'/holds/0/scope'", "must be one of"}},
		{"holds under the wrong key", "GET", "/v1/legal-holds", 200, jsonCT, `{"items":[` + holdDataset + `]}`,
			[]string{"missing property 'holds'", "additional properties 'items'"}},
		{"undocumented conflict on a run", "GET", "/v1/retention/runs/" + runID, 409, probCT, problem(409, "conflict", ""),
			[]string{"GET /v1/retention/runs/{id}", "status 409", "not documented"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := d.Validate(c.method, c.path, c.status, c.contentType, []byte(c.body))
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// A synthetic document exercises matching rules the real one has no case
// for: literal-vs-template at different positions, declaration order, mixed
// segments, status ranges and default, and responses without a body.
const synthetic = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "1"},
  "components": {
    "schemas": {"Which": {"type": "object", "required": ["which"], "properties": {"which": {"type": "string"}}}},
    "responses": {
      "Which": {"$ref": "#/components/responses/WhichInner"},
      "WhichInner": {"description": "d", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Which"}}}}
    }
  },
  "paths": {
    "/a/{x}/c": {"get": {"responses": {"200": {"description": "d", "content": {"application/json": {"schema": {"properties": {"which": {"const": "x"}}}}}}}}},
    "/a/b/{y}": {"get": {"responses": {"200": {"description": "d", "content": {"application/json": {"schema": {"properties": {"which": {"const": "y"}}}}}}}}},
    "/a/b/c":   {"get": {"responses": {"200": {"description": "d", "content": {"application/json": {"schema": {"properties": {"which": {"const": "literal"}}}}}}}}},
    "/files/{name}.json": {"get": {"responses": {"200": {"$ref": "#/components/responses/Which"}}}},
    "/r": {"get": {"responses": {
      "204": {"description": "no body"},
      "2XX": {"description": "d", "content": {"text/*": {"schema": {"type": "string", "maxLength": 3}}}},
      "default": {"description": "d", "content": {"application/problem+json": {"schema": {"type": "object", "required": ["code"]}}, "image/png": {}}}
    }}}
  }
}`

func TestMatching(t *testing.T) {
	d, err := openapitest.Load([]byte(synthetic))
	if err != nil {
		t.Fatal(err)
	}
	ok := func(method, path string, status int, ct, body string) {
		t.Helper()
		if err := d.Validate(method, path, status, ct, []byte(body)); err != nil {
			t.Errorf("%s %s %d: %v", method, path, status, err)
		}
	}
	bad := func(method, path string, status int, ct, body, want string) {
		t.Helper()
		err := d.Validate(method, path, status, ct, []byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s %s %d: got %v, want an error mentioning %q", method, path, status, err, want)
		}
	}
	for path, want := range map[string]string{
		"/a/b/c": "GET /a/b/c", "/a/b/z?q=1": "GET /a/b/{y}", "/a/q/c": "GET /a/{x}/c", "/files/x.json": "GET /files/{name}.json",
	} {
		if got, err := d.Operation("GET", path); got != want || err != nil {
			t.Errorf("Operation(GET, %s) = %q, %v; want %q", path, got, err, want)
		}
	}
	if got, err := d.Operation("POST", "/a/b/c"); err == nil || !strings.Contains(err.Error(), "method is not documented") {
		t.Errorf("Operation(POST, /a/b/c) = %q, %v; want a method error", got, err)
	}
	// /a/b/c matches all three templates; the fully literal one wins.
	ok("GET", "/a/b/c", 200, jsonCT, `{"which":"literal"}`)
	bad("GET", "/a/b/c", 200, jsonCT, `{"which":"y"}`, "GET /a/b/c (path /a/b/c)")
	// /a/b/z: /a/b/{y} (literal at position 2) beats /a/{x}/c, which does not match anyway.
	ok("GET", "/a/b/z", 200, jsonCT, `{"which":"y"}`)
	// /a/q/c: only /a/{x}/c matches.
	ok("GET", "/a/q/c", 200, jsonCT, `{"which":"x"}`)
	// Query strings are ignored; segments match exactly.
	ok("get", "/a/q/c?which=y", 200, jsonCT, `{"which":"x"}`)
	bad("GET", "/a/b/c/", 200, jsonCT, `{}`, "no path in the document matches")
	bad("GET", "/a//c", 200, jsonCT, `{}`, "no path in the document matches")
	// Mixed segment, and a response $ref chain down to a schema $ref.
	ok("GET", "/files/report.json", 200, jsonCT, `{"which":"any"}`)
	bad("GET", "/files/report.json", 200, jsonCT, `{}`, "missing property 'which'")
	bad("GET", "/files/.json", 200, jsonCT, `{}`, "no path in the document matches")
	bad("GET", "/files/report.xml", 200, jsonCT, `{}`, "no path in the document matches")
	// Exact status, then range, then default.
	ok("GET", "/r", 204, "", "")
	bad("GET", "/r", 204, jsonCT, `{}`, "declares no body")
	ok("GET", "/r", 200, "text/plain; charset=utf-8", "abc")
	ok("GET", "/r", 206, "TEXT/CSV", "a,b")
	bad("GET", "/r", 200, "text/plain", "abcd", "maxLength")
	bad("GET", "/r", 200, jsonCT, `"a"`, `"application/json" is not documented`)
	ok("GET", "/r", 418, probCT, `{"code":"teapot"}`)
	ok("GET", "/r", 503, "image/png", "\x89PNG") // declared without a schema: any body
	bad("GET", "/r", 500, probCT, `{}`, "status 500")
}

func TestLoadRefuses(t *testing.T) {
	cases := map[string]struct{ doc, want string }{
		"not json":    {`{`, "not JSON"},
		"openapi 3.0": {`{"openapi":"3.0.3","paths":{}}`, "only 3.1.x"},
		"broken schema ref": {`{"openapi":"3.1.0","paths":{"/x":{"get":{"responses":{"200":{"description":"d",
			"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Missing"}}}}}}}}}`, "GET /x 200 application/json"},
		"broken response ref": {`{"openapi":"3.1.0","paths":{"/x":{"get":{"responses":{"200":{"$ref":"#/components/responses/Nope"}}}}}}`, "GET /x 200"},
		"bad status key":      {`{"openapi":"3.1.0","paths":{"/x":{"get":{"responses":{"ok":{"description":"d"}}}}}}`, `"ok"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := openapitest.Load([]byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

// TestServerRoutesDocumented reads the route registrations in server.go and
// checks they and the document's operations are the same set, so adding a
// route without documenting it (or documenting one that does not exist)
// fails here rather than in a client.
func TestServerRoutesDocumented(t *testing.T) {
	src, err := os.ReadFile(serverPath)
	if err != nil {
		t.Fatal(err)
	}
	routes := fiberRoutes(t, string(src))
	if len(routes) < 10 {
		t.Fatalf("found only %d routes in %s; has the registration style changed?\n%s", len(routes), serverPath, strings.Join(routes, "\n"))
	}
	d, _ := loadDoc(t)
	documented := map[string]bool{}
	for _, op := range d.Operations() {
		documented[op] = true
	}
	registered := map[string]bool{}
	for _, r := range routes {
		registered[r] = true
		if !documented[r] {
			t.Errorf("%s is registered in server.go but not in openapi.json", r)
		}
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("%s is in openapi.json but not registered in server.go", op)
		}
	}
}

var (
	groupRe = regexp.MustCompile(`(\w+)\s*:=\s*(\w+)\.Group\(\s*"([^"]*)"`)
	// keyedRoutes{router, handlers} registers on router (server.go).
	keyedRe = regexp.MustCompile(`(\w+)\s*:=\s*keyedRoutes\{\s*(\w+)\s*,`)
	routeRe = regexp.MustCompile(`(\w+)\.(Get|Post|Put|Patch|Delete|Head|Options)\(\s*"([^"]*)"`)
	paramRe = regexp.MustCompile(`:(\w+)`)
)

// fiberRoutes returns "METHOD /template" for each fiber route registered in
// src, with group prefixes applied and :param turned into {param}. Groups
// are resolved in source order, which is how Go requires them to be declared.
func fiberRoutes(t *testing.T, src string) []string {
	t.Helper()
	prefix := map[string]string{"app": ""}
	for _, m := range groupRe.FindAllStringSubmatch(src, -1) {
		parent, ok := prefix[m[2]]
		if !ok {
			t.Fatalf("group %s is made from unknown router %s", m[1], m[2])
		}
		prefix[m[1]] = parent + m[3]
	}
	for _, m := range keyedRe.FindAllStringSubmatch(src, -1) {
		parent, ok := prefix[m[2]]
		if !ok {
			t.Fatalf("keyed routes %s are made from unknown router %s", m[1], m[2])
		}
		prefix[m[1]] = parent
	}
	var out []string
	for _, m := range routeRe.FindAllStringSubmatch(src, -1) {
		p, ok := prefix[m[1]]
		if !ok {
			t.Fatalf("route %s %q is registered on unknown router %s", m[2], m[3], m[1])
		}
		out = append(out, strings.ToUpper(m[2])+" "+paramRe.ReplaceAllString(p+m[3], "{$1}"))
	}
	sort.Strings(out)
	return out
}

// componentSchema compiles one schema of the document's components, for the
// request bodies Validate (which checks responses) does not cover.
func componentSchema(t *testing.T, raw []byte, name string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	const url = "mem://steward/openapi.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url + "#/components/schemas/" + name)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

// TestRequestBodies checks the documented request bodies against what the
// handlers decode (retention.HoldInput, startRunBody, reasonBody), so a
// client generated from the document sends what the server accepts.
func TestRequestBodies(t *testing.T) {
	_, raw := loadDoc(t)
	cases := []struct {
		schema string
		body   string
		want   string // "" when the body must validate; else part of the error
	}{
		{"LegalHoldInput", `{"subject":"email:ann@example.com","reason":"Litigation hold, case 24-cv-0192","expires_at":"2027-03-04T00:00:00Z"}`, ""},
		{"LegalHoldInput", `{"dataset":"app_db.payments","reason":"Tax audit FY2020"}`, ""},
		{"LegalHoldInput", `{"category":"user.financial","reason":"Regulator inquiry"}`, ""},
		{"LegalHoldInput", `{"dataset":"app_db.payments","category":"user.financial","reason":"x"}`, "oneOf"},
		{"LegalHoldInput", `{"reason":"nothing named"}`, "oneOf"},
		{"LegalHoldInput", `{"dataset":"app_db.payments"}`, "missing property 'reason'"},
		{"LegalHoldInput", `{"dataset":"payments","reason":"x"}`, "does not match pattern"},
		{"LegalHoldInput", `{"subject":"ann@example.com","reason":"x"}`, "does not match pattern"},
		{"LegalHoldInput", `{"dataset":"app_db.payments","reason":"x","expires_at":"next year"}`, "date-time"},
		{"LegalHoldInput", `{"dataset":"app_db.payments","reason":"x","scope":"dataset"}`, "additional properties 'scope'"},
		{"StartRetentionRun", `{}`, "missing property 'dry_run'"},
		{"StartRetentionRun", `{"dry_run":false}`, ""},
		{"StartRetentionRun", `{"dry_run":true,"dataset":"steward.verification_codes"}`, ""},
		{"StartRetentionRun", `{"dry_run":"yes"}`, "want boolean"},
		{"StartRetentionRun", `{"dry_run":true,"datasets":["app_db.payments"]}`, "additional properties 'datasets'"},
		{"ReplanBody", `{}`, ""},
		{"ReplanBody", `{"identities":["email:ann.other@example.com","tg:123456"],"note":"the address the person signed up with"}`, ""},
		{"ReplanBody", `{"identities":["ann.other@example.com"]}`, "does not match pattern"},
		{"ReplanBody", `{"identity":"tg:123456"}`, "additional properties 'identity'"},
		{"LiftLegalHold", `{"reason":"Case settled and closed"}`, ""},
		{"LiftLegalHold", `{}`, "missing property 'reason'"},
		{"LiftLegalHold", `{"reason":""}`, "minLength"},
	}
	compiled := map[string]*jsonschema.Schema{}
	for _, c := range cases {
		s := compiled[c.schema]
		if s == nil {
			s = componentSchema(t, raw, c.schema)
			compiled[c.schema] = s
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(c.body))
		if err != nil {
			t.Fatalf("%s %s: %v", c.schema, c.body, err)
		}
		err = s.Validate(inst)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s rejects %s: %v", c.schema, c.body, err)
		case c.want != "" && err == nil:
			t.Errorf("%s accepts %s", c.schema, c.body)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s %s: error does not mention %q:\n%v", c.schema, c.body, c.want, err)
		}
	}
}

// TestDocumentKeysUniqueAndOutagesDocumented: the document is edited by
// hand, and encoding/json keeps the last of two equal keys silently, so a
// response pasted twice would hide one of them. And every operation that
// reaches the database (those documenting a 500) answers a database outage
// with 503 and Retry-After, not 500: the document must say so.
func TestDocumentKeysUniqueAndOutagesDocumented(t *testing.T) {
	_, raw := loadDoc(t)
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := k.(string)
				if seen[key] {
					t.Errorf("%s: key %q appears twice", path, key)
				}
				seen[key] = true
				if err := walk(path + "/" + key); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(path + "/" + strconv.Itoa(i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk(""); err != nil {
		t.Fatal(err)
	}

	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			if _, ok := op.Responses["500"]; !ok {
				continue
			}
			n++
			if _, ok := op.Responses["503"]; !ok {
				t.Errorf("%s %s documents 500 but not the outage's 503", strings.ToUpper(method), path)
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d operations document a 500; the document was not read", n)
	}
}
