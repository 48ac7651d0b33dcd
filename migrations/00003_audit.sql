-- Tamper-evident audit log.
--
-- Ordering design: an entry is first written to audit_pending in the same
-- transaction as the change it records, so there is never a change without
-- its entry nor an entry for a change that rolled back. A single sealer
-- (internal/audit.Sealer; one at a time across replicas, serialised on the
-- audit_head row lock) then moves pending entries into audit_log in batches,
-- giving each the next gapless seq and hash = SHA-256(canonical entry ||
-- prev_hash). Chaining inside every writer's transaction would hold the head
-- lock through each commit's WAL flush, capping the whole service at roughly
-- one audited write per fsync (about 900/s on the development machine);
-- batching keeps writers concurrent and the chain strictly ordered.

-- +goose Up
CREATE TABLE audit_pending (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL,
    actor           text NOT NULL,
    action          text NOT NULL,
    target_type     text NOT NULL,
    target_id       text NOT NULL,
    details         jsonb NOT NULL,
    policy_revision text NOT NULL
);

CREATE TABLE audit_log (
    seq             bigint PRIMARY KEY CHECK (seq > 0),
    pending_id      bigint NOT NULL UNIQUE,
    at              timestamptz NOT NULL,
    actor           text NOT NULL,
    action          text NOT NULL,
    target_type     text NOT NULL,
    target_id       text NOT NULL,
    details         jsonb NOT NULL,
    policy_revision text NOT NULL,
    prev_hash       bytea NOT NULL,
    hash            bytea NOT NULL,
    sealed_at       timestamptz NOT NULL
);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_at ON audit_log (at, seq);

-- The chain head: one row, updated by the sealer under lock.
CREATE TABLE audit_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL,
    hash bytea NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
    seq        bigint PRIMARY KEY,
    hash       bytea NOT NULL,
    at         timestamptz NOT NULL,
    key_id     text NOT NULL,
    signature  bytea NOT NULL
);

-- The database refuses change to the record.
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION steward_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION steward_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION steward_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION steward_refuse_change();

-- Pending entries can never be edited, and can be removed only once they
-- are in the chain.
-- +goose StatementBegin
CREATE FUNCTION steward_audit_pending_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_log WHERE pending_id = OLD.id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_pending: % refused (only sealed entries may leave)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_pending_guard BEFORE UPDATE OR DELETE ON audit_pending
    FOR EACH ROW EXECUTE FUNCTION steward_audit_pending_guard();
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION steward_refuse_change();

-- The head may only move forward, one sealed entry at a time.
-- +goose StatementBegin
CREATE FUNCTION steward_audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.seq < OLD.seq
       OR NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq AND hash = NEW.hash) AND NEW.seq <> 0 THEN
        RAISE EXCEPTION 'audit_head: % refused (the head follows the chain)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_head_guard BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION steward_audit_head_guard();

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP FUNCTION steward_audit_head_guard();
DROP TABLE audit_log;
DROP TABLE audit_pending;
DROP FUNCTION steward_audit_pending_guard();
