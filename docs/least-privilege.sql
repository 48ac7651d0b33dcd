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
GRANT SELECT, INSERT ON subject_links TO steward_app;

-- Proof and record: insert and read, nothing else.
GRANT SELECT, INSERT ON consent_events TO steward_app;
GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO steward_app;

-- The sealer's two narrow exceptions, each guarded by a trigger.
GRANT SELECT, INSERT, DELETE ON audit_pending TO steward_app;
GRANT SELECT, UPDATE ON audit_head TO steward_app;
