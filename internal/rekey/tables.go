package rekey

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/notify"
)

// sealed is one group of columns sealed under one key id column: the rows
// the job re-seals and the status counts. Several groups may share a table
// (privacy_requests has three, each with its own kid).
type sealed struct {
	// name is what status and the audit call the group: "table" or
	// "table.column" where a table has more than one.
	name  string
	table string
	kid   string
	// keys are SQL expressions (text) the associated data is made of, in
	// the order aad receives them.
	keys []string
	cols []sealedCol
	// hash, if set, is a keyed lookup hash of the identity sealed in
	// cols[0], recomputed under the active key with the re-seal: a lookup
	// tries every configured key's hash, so a row hashed under a removed
	// key would no longer be found.
	hash *lookupHash
	// extra narrows the rows that hold something sealed (SQL, may be "").
	extra string
}

type sealedCol struct {
	col string
	aad func(keys []string) []byte
}

type lookupHash struct {
	col string
	// kid is the hash's own key column when the table has one (subjects:
	// a forgotten-then-returning subject is re-sealed under the active key
	// while its hash stays under the old one); otherwise the hash was made
	// with the ciphertext and shares its kid.
	kid string
	// subject reads the identity from cols[0]'s plaintext.
	subject func(plain []byte) (identity.Subject, error)
	// dup, if set, is a query (args: keys[0], new hash) that finds a row
	// already holding the new hash: the same identity stored twice for one
	// request, before and after the rotation. The old row is then deleted
	// instead of colliding with the primary key.
	dup string
}

// The associated data below must stay byte-for-byte what the owning
// packages seal with; they are repeated here rather than exported because
// the owners are feature packages this job must not depend on. A change
// there without a change here fails TestKeyRotation (cmd/steward), which
// re-keys rows those packages wrote and opens them through those packages.
func dsarAAD(what func(k []string) string) func([]string) []byte {
	return func(k []string) []byte { return []byte("steward dsar v1\x00" + k[0] + "\x00" + what(k)) }
}

func constAAD(s string) func([]string) []byte { return func([]string) []byte { return []byte(s) } }

func rawSubject(p []byte) (identity.Subject, error) { return identity.Parse(string(p)) }

// jsonSubject reads internal/dsar's sealed identity (a JSON string).
func jsonSubject(p []byte) (identity.Subject, error) {
	var s string
	if err := json.Unmarshal(p, &s); err != nil {
		return identity.Subject{}, fmt.Errorf("sealed identity: %w", err)
	}
	return identity.Parse(s)
}

// tables is every place Steward stores a value sealed or hashed with the
// identity keyring for later use. Not here, on purpose:
//   - verification_codes.hash_kid: codes are checked under the active key
//     only and live minutes, so an old key never opens one;
//   - HashIP and HashValue results (IP hashes, pseudonyms, CSRF secrets,
//     the export link key): derived from the active key, compared only
//     with values made under it, never looked up under an old key;
//   - outbox payloads: sealed with internal/notify's own associated data
//     and emptied on delivery; status counts the undelivered ones (below),
//     which drain by themselves.
var tables = []sealed{
	{name: "subjects", table: "subjects", kid: "enc_kid", keys: []string{"kind"},
		cols: []sealedCol{{"ciphertext", func(k []string) []byte { return []byte(k[0]) }}},
		hash: &lookupHash{col: "lookup_hash", kid: "hash_kid", subject: rawSubject}},
	{name: "privacy_requests.contact", table: "privacy_requests", kid: "contact_kid", keys: []string{"id::text"},
		cols: []sealedCol{{"contact_ct", dsarAAD(func([]string) string { return "contact" })}}},
	{name: "privacy_requests.details", table: "privacy_requests", kid: "details_kid", keys: []string{"id::text"},
		cols: []sealedCol{{"details_ct", dsarAAD(func([]string) string { return "details" })}}},
	{name: "privacy_requests.package_link", table: "privacy_requests", kid: "package_link_kid", keys: []string{"id::text"},
		cols: []sealedCol{{"package_link", dsarAAD(func([]string) string { return "package_link" })}}},
	{name: "privacy_request_identities", table: "privacy_request_identities", kid: "kid", keys: []string{"request_id::text"},
		cols: []sealedCol{{"ciphertext", dsarAAD(func([]string) string { return "identity" })}},
		hash: &lookupHash{col: "lookup_hash", subject: jsonSubject,
			dup: `SELECT EXISTS (SELECT 1 FROM privacy_request_identities WHERE request_id = $1::uuid AND lookup_hash = $2)`}},
	{name: "privacy_request_records", table: "privacy_request_records", kid: "kid",
		keys: []string{"(SELECT t.request_id::text FROM privacy_request_tasks t WHERE t.id = task_id)", "task_id::text", "seq::text"},
		cols: []sealedCol{{"ciphertext", dsarAAD(func(k []string) string { return "record:" + k[1] + ":" + k[2] })}}},
	{name: "privacy_request_files", table: "privacy_request_files", kid: "kid",
		keys: []string{"(SELECT t.request_id::text FROM privacy_request_tasks t WHERE t.id = task_id)", "task_id::text", "seq::text"},
		cols: []sealedCol{
			{"wrapped_key", dsarAAD(func(k []string) string { return "filekey:" + k[1] + ":" + k[2] })},
			{"meta", dsarAAD(func(k []string) string { return "file:" + k[1] + ":" + k[2] })},
		}},
	{name: "privacy_request_documents", table: "privacy_request_documents", kid: "kid", keys: []string{"request_id::text", "kind"},
		cols: []sealedCol{
			{"content", dsarAAD(func(k []string) string { return "document:" + k[1] })},
			{"meta", dsarAAD(func(k []string) string { return "document-meta:" + k[1] })},
		}},
	{name: "export_packages", table: "export_packages", kid: "kid", keys: []string{"id::text"},
		cols: []sealedCol{{"wrapped_key", func(k []string) []byte { return []byte("steward/export/v1\x00" + k[0]) }}}},
	{name: "legal_holds", table: "legal_holds", kid: "subject_kid", keys: []string{"id::text"},
		cols: []sealedCol{{"subject_ct", func(k []string) []byte { return []byte("legal_hold:" + k[0]) }}},
		hash: &lookupHash{col: "subject_hash", subject: rawSubject}},
	{name: "person_signin_codes", table: "person_signin_codes", kid: "subject_kid",
		cols: []sealedCol{{"subject_ct", constAAD("steward web v1\x00signin")}}},
	{name: "person_sessions", table: "person_sessions", kid: "subject_kid",
		cols: []sealedCol{{"subject_ct", constAAD("steward web v1\x00session")}}},
	{name: "staff_accounts.totp", table: "staff_accounts", kid: "totp_kid", keys: []string{"id::text"},
		cols: []sealedCol{{"totp_ct", func(k []string) []byte { return []byte("steward staff totp v1\x00" + k[0]) }}}},
	{name: "staff_pending.totp", table: "staff_pending", kid: "enrol_totp_kid", keys: []string{"account_id::text"},
		cols: []sealedCol{{"enrol_totp_ct", func(k []string) []byte { return []byte("steward staff totp v1\x00" + k[0]) }}}},
	{name: "staff_oidc_states", table: "staff_oidc_states", kid: "verifier_kid", keys: []string{"encode(state_hash, 'hex')"},
		cols: []sealedCol{{"verifier_ct", func(k []string) []byte {
			h, _ := hex.DecodeString(k[0]) // encode(…, 'hex') above: always valid
			return append([]byte("steward staff oidc verifier v1\x00"), h...)
		}}}},
	// Outbound webhooks: their owner exports the associated data.
	{name: "webhook_endpoints.secret", table: "webhook_endpoints", kid: "secret_kid", keys: []string{"id::text"},
		cols: []sealedCol{{"secret_ct", func(k []string) []byte { return notify.WebhookSecretAAD(k[0], "current") }}}},
	{name: "webhook_endpoints.prev_secret", table: "webhook_endpoints", kid: "prev_secret_kid", keys: []string{"id::text"},
		cols: []sealedCol{{"prev_secret_ct", func(k []string) []byte { return notify.WebhookSecretAAD(k[0], "previous") }}}},
	{name: "webhook_deliveries", table: "webhook_deliveries", kid: "body_kid", keys: []string{"id::text"},
		cols: []sealedCol{{"body_ct", func(k []string) []byte { return notify.WebhookBodyAAD(k[0]) }}}},
}
