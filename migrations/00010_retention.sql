-- Retention enforcement: legal holds that stop sweeps, and a record of
-- every sweep run, per dataset, for the regulator.

-- +goose Up

-- A legal hold keeps data a sweep would otherwise remove: one subject's
-- records (every dataset), one dataset, or every dataset holding a data
-- category. A subject is stored as the request identities are: a keyed
-- hash to find holds by identity, and the identity sealed by the keyring,
-- which a sweep opens to find the subject's records. Holds are lifted, not
-- deleted: who held what, why and until when stays provable.
CREATE TABLE legal_holds (
    id            uuid PRIMARY KEY,
    scope         text NOT NULL CHECK (scope IN ('subject', 'dataset', 'category')),
    system        text,
    dataset       text,
    category      text,
    subject_kind  text,
    subject_hash  bytea,
    subject_kid   text,
    subject_ct    bytea,
    reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    lifted_at     timestamptz,
    lifted_by     text,
    lift_reason   text,
    CHECK (expires_at IS NULL OR expires_at > created_at),
    CHECK ((scope = 'subject') = (subject_hash IS NOT NULL AND subject_ct IS NOT NULL AND subject_kid IS NOT NULL AND subject_kind IS NOT NULL)),
    CHECK ((scope = 'dataset') = (system IS NOT NULL AND dataset IS NOT NULL)),
    CHECK ((scope = 'category') = (category IS NOT NULL)),
    CHECK ((lifted_at IS NULL) = (lifted_by IS NULL))
);
CREATE INDEX legal_holds_active ON legal_holds (created_at, id) WHERE lifted_at IS NULL;
CREATE INDEX legal_holds_subject ON legal_holds (subject_hash) WHERE subject_hash IS NOT NULL;

-- A retention run: scheduled, or started through the API or CLI. "at" is
-- the run's now: every cutoff derives from it, so a retried dataset job
-- sweeps the same records.
CREATE TABLE retention_runs (
    id              uuid PRIMARY KEY,
    trigger         text NOT NULL CHECK (trigger IN ('schedule', 'api', 'cli')),
    actor           text NOT NULL,
    dry_run         boolean NOT NULL,
    only_dataset    text,
    at              timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    finished_at     timestamptz,
    policy_revision text NOT NULL
);
CREATE INDEX retention_runs_at ON retention_runs (at DESC, id DESC);
-- One scheduled run per scheduled moment, whichever replica fires it.
CREATE UNIQUE INDEX retention_runs_scheduled ON retention_runs (at) WHERE trigger = 'schedule';

-- One row per dataset of a run, updated as its job commits batches: the
-- counts only grow by what a batch changed, and cursor is where a retried
-- job resumes.
CREATE TABLE retention_run_datasets (
    run_id      uuid NOT NULL REFERENCES retention_runs (id),
    system      text NOT NULL,
    dataset     text NOT NULL,
    rule        text NOT NULL,
    action      text NOT NULL,
    basis       text NOT NULL,
    cutoff      timestamptz NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'held', 'manual')),
    matched     bigint,
    deleted     bigint NOT NULL DEFAULT 0,
    anonymized  bigint NOT NULL DEFAULT 0,
    bytes       bigint NOT NULL DEFAULT 0,
    held        bigint NOT NULL DEFAULT 0,
    kept        bigint NOT NULL DEFAULT 0,
    errors      integer NOT NULL DEFAULT 0,
    last_error  text,
    note        text,
    cursor      text NOT NULL DEFAULT '',
    started_at  timestamptz,
    finished_at timestamptz,
    duration_ms bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, system, dataset)
);

-- +goose Down

DROP TABLE retention_run_datasets;
DROP TABLE retention_runs;
DROP TABLE legal_holds;
