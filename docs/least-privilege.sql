-- Least-privilege role for running `steward serve`.
--
-- Run `steward migrate up` as the schema owner (it creates the tables), then
-- run this file as the owner, then start `steward serve` with a DATABASE_URL
-- for steward_app. At start serve finds no pending migration and needs no DDL.
--
-- The audit record and consent proof get INSERT and SELECT only: even without
-- the append-only triggers, this role cannot change or remove them. The
-- sealer must move the chain head forward (UPDATE on audit_head, guarded by a
-- trigger) and remove sealed entries from audit_pending (DELETE, refused by
-- a trigger for any entry not yet in the chain).
--
--   psql "$OWNER_URL" -v ON_ERROR_STOP=1 -f docs/least-privilege.sql
--   (create the login first: CREATE ROLE steward_app LOGIN PASSWORD '...';)

GRANT USAGE ON SCHEMA public TO steward_app;
GRANT SELECT ON steward_schema_migrations TO steward_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO steward_app;

-- Working state.
GRANT SELECT, INSERT, UPDATE ON api_keys, subjects, consent_state, outbox TO steward_app;
-- Links go when a person is erased from the consent ledger.
GRANT SELECT, INSERT, DELETE ON subject_links TO steward_app;
-- Consent state: a grant goes with its erased owner (consent.Forget).
GRANT DELETE ON consent_state TO steward_app;

-- Proof and record: insert and read, nothing else.
GRANT SELECT, INSERT ON consent_events TO steward_app;
-- Erasure's one exception (consent.Forget, the control-plane sweep): clear a
-- user agent and IP hash, delete an erased person's grants. The trigger of
-- migration 00016 refuses anything else, and these too outside a
-- transaction that opened steward.consent_forget.
GRANT UPDATE (user_agent, ip_hash), DELETE ON consent_events TO steward_app;
GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO steward_app;

-- The sealer's two narrow exceptions, each guarded by a trigger.
GRANT SELECT, INSERT, DELETE ON audit_pending TO steward_app;
GRANT SELECT, UPDATE ON audit_head TO steward_app;

-- Privacy requests. The timeline is proof like the consent ledger: insert and
-- read only. Codes are deleted once used; identities are only ever added;
-- reminders start over when a deadline is extended.
GRANT SELECT, INSERT, UPDATE ON privacy_requests, privacy_request_tasks TO steward_app;
GRANT SELECT, INSERT ON privacy_request_events TO steward_app;
-- Identities: retention clears a closed request's. Tasks: planning again
-- drops the pending tasks the new plan no longer has.
GRANT SELECT, INSERT, DELETE ON privacy_request_identities TO steward_app;
GRANT DELETE ON privacy_request_tasks TO steward_app;
-- Art. 19 notices to recipients: recorded at completion, marked done by staff.
GRANT SELECT, INSERT, UPDATE ON recipient_notifications TO steward_app;
-- An agent's uploaded authorization: stored, opened, cleared by retention.
GRANT SELECT, INSERT, DELETE ON privacy_request_documents TO steward_app;
-- Staff mark the signed instruction reviewed (a verification step).
GRANT UPDATE (reviewed_at, reviewed_by) ON privacy_request_documents TO steward_app;
-- Challenge-login tokens are single use: their jti hash is kept until expiry.
GRANT SELECT, INSERT, DELETE ON challenge_login_tokens TO steward_app;
GRANT SELECT, INSERT, DELETE ON privacy_request_reminders TO steward_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON verification_codes TO steward_app;
GRANT SELECT, INSERT ON verification_sends TO steward_app;
GRANT SELECT, INSERT, DELETE ON privacy_request_records TO steward_app;
GRANT SELECT, INSERT, DELETE ON privacy_request_files TO steward_app;
-- Export packages: created, counted on download, marked deleted on expiry.
GRANT SELECT, INSERT, UPDATE ON export_packages TO steward_app;
-- Restrictions (GDPR Art. 18): set, and lifted (kept, marked lifted).
GRANT SELECT, INSERT, UPDATE ON processing_restrictions TO steward_app;
-- Outbound webhooks: endpoints registered, rotated and deleted (kept,
-- marked deleted), deliveries updated as they go, attempts only appended.
GRANT SELECT, INSERT, UPDATE ON webhook_endpoints, webhook_deliveries TO steward_app;
GRANT SELECT, INSERT ON webhook_attempts TO steward_app;
-- Announcements of a new notice version: one row each.
GRANT SELECT, INSERT, UPDATE ON notice_announcements TO steward_app;
-- Retention: runs and their per-dataset counts, legal holds placed and lifted.
GRANT SELECT, INSERT, UPDATE ON retention_runs, retention_run_datasets, legal_holds TO steward_app;
-- The privacy center's consent sign-in: codes and sessions come and go.
GRANT SELECT, INSERT, UPDATE, DELETE ON person_signin_codes, person_sessions TO steward_app;
-- Staff console sign-in: accounts (created by the CLI as the app role too),
-- passkeys, pending sign-ins, sessions and single sign-on states.
GRANT SELECT, INSERT, UPDATE ON staff_accounts TO steward_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON staff_passkeys, staff_pending, staff_sessions, staff_oidc_states TO steward_app;

-- Identity key rotation (internal/rekey, the server's re-encryption task):
-- re-seals values under the active key and re-hashes lookups, in tables the
-- app otherwise only inserts into and deletes from: the key id and the
-- sealed (and hashed) columns, nothing else.
GRANT UPDATE (kid, ciphertext, lookup_hash) ON privacy_request_identities TO steward_app;
GRANT UPDATE (kid, ciphertext) ON privacy_request_records TO steward_app;
GRANT UPDATE (kid, wrapped_key, meta) ON privacy_request_files TO steward_app;
GRANT UPDATE (kid, content, meta) ON privacy_request_documents TO steward_app;

-- River (durable jobs): its workers insert, lock, update and clean up job
-- rows, elect a maintenance leader, and read its schema version at start.
GRANT SELECT ON river_migration TO steward_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON river_job, river_leader, river_queue, river_notification TO steward_app;
-- Job leases (internal/jobs): each running job's lease, renewed while it
-- runs and swept when it lapses.
GRANT SELECT, INSERT, UPDATE, DELETE ON job_leases TO steward_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO steward_app;
