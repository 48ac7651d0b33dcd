-- Privacy requests (access, export, erasure, rectification, restriction,
-- objection): the request and its lifecycle, identity verification, the plan
-- of tasks and their results, reminders. River's own tables (durable jobs)
-- are created by River's migrator right after these migrations.
--
-- Personal data is never stored in the clear here either: identities are a
-- keyed hash plus AES-GCM ciphertext (as in subjects), and anything a person
-- typed that may be personal (correction values, agent details, notes from
-- intake) is sealed in one *_ct column.

-- +goose Up

CREATE TABLE privacy_requests (
    id                  uuid PRIMARY KEY,
    type                text NOT NULL CHECK (type IN ('access', 'export', 'erasure', 'rectification', 'restriction', 'objection')),
    status              text NOT NULL CHECK (status IN ('received', 'identity_pending', 'verified', 'awaiting_approval',
                            'approved', 'in_progress', 'completed', 'denied', 'canceled', 'failed', 'paused')),
    -- Where a paused request returns on resume.
    paused_from         text,
    channel             text NOT NULL CHECK (channel IN ('web', 'bot', 'staff', 'agent')),
    language            text NOT NULL CHECK (language IN ('en', 'ru', 'uz')),
    region              text NOT NULL,
    regime              text NOT NULL,
    subject_id          bigint NOT NULL REFERENCES subjects (id),
    subject_kind        text NOT NULL,
    -- Where notifications go (the subject's email, sealed), if known.
    contact_kid         text,
    contact_ct          bytea,
    -- SHA-256 of the status token: the token is a 256-bit random secret
    -- shown once, so a fast hash is enough.
    status_token_hash   bytea NOT NULL UNIQUE,
    -- Sealed JSON: correction values, agent details, intake note.
    details_kid         text,
    details_ct          bytea,
    received_at         timestamptz NOT NULL,
    due_at              timestamptz NOT NULL,
    original_due_at     timestamptz NOT NULL,
    acknowledge_by      timestamptz,
    -- The latest the request may be answered once extended; NULL when the
    -- regime allows no extension. extension_notice_by: when the person must
    -- be told at the latest.
    extendable_until    timestamptz,
    extension_notice_by timestamptz,
    extended_at         timestamptz,
    extension_reason    text,
    verified_at         timestamptz,
    verification        text,
    approval_required   boolean,
    approval_rule       text,
    planned_at          timestamptz,
    plan_run            integer NOT NULL DEFAULT 1,
    plan_error          text,
    plan                jsonb,
    deny_reason         text,
    failure_reason      text,
    completed_at        timestamptz,
    closed_at           timestamptz,
    created_by          text NOT NULL,
    policy_revision     text NOT NULL,
    updated_at          timestamptz NOT NULL,
    CHECK ((status = 'paused') = (paused_from IS NOT NULL))
);

-- One open request per subject and type: a second submission returns the
-- first instead of starting a parallel one.
CREATE UNIQUE INDEX privacy_requests_open ON privacy_requests (subject_id, type)
    WHERE status NOT IN ('completed', 'denied', 'canceled');
-- Staff work by due date; open requests only.
CREATE INDEX privacy_requests_due ON privacy_requests (due_at, id)
    WHERE status NOT IN ('completed', 'denied', 'canceled');
CREATE INDEX privacy_requests_received ON privacy_requests (received_at DESC, id DESC);

-- The timeline: every transition and staff action, append-only. The audit
-- log records the same events with a hash of any free text, so the chain
-- vouches for the notes without holding them.
CREATE TABLE privacy_request_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id  uuid NOT NULL REFERENCES privacy_requests (id),
    at          timestamptz NOT NULL,
    event       text NOT NULL,
    from_status text,
    to_status   text,
    actor       text NOT NULL,
    note        text
);
CREATE INDEX privacy_request_events_request ON privacy_request_events (request_id, id);
CREATE TRIGGER privacy_request_events_append_only BEFORE UPDATE OR DELETE ON privacy_request_events
    FOR EACH ROW EXECUTE FUNCTION steward_refuse_change();

-- Every identity of the request's subject: the one given and those the
-- connectors resolved (email -> account id -> Telegram id -> Stripe customer).
CREATE TABLE privacy_request_identities (
    request_id  uuid NOT NULL REFERENCES privacy_requests (id),
    kind        text NOT NULL,
    lookup_hash bytea NOT NULL,
    kid         text NOT NULL,
    ciphertext  bytea NOT NULL,
    source      text NOT NULL, -- 'given' or the system that resolved it
    PRIMARY KEY (request_id, lookup_hash)
);

-- One live code per request. The code is 6 digits, so it is stored as a
-- keyed HMAC (a plain hash of a million possibilities is no secret).
CREATE TABLE verification_codes (
    request_id  uuid PRIMARY KEY REFERENCES privacy_requests (id),
    code_hash   bytea NOT NULL,
    hash_kid    text NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL
);

-- Code sends, for the per-identity and per-IP rate limits (keyed hashes).
CREATE TABLE verification_sends (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_hash bytea NOT NULL,
    ip_hash      bytea,
    at           timestamptz NOT NULL
);
CREATE INDEX verification_sends_subject ON verification_sends (subject_hash, at);
CREATE INDEX verification_sends_ip ON verification_sends (ip_hash, at);

-- The plan's tasks: one per system and dataset for a connector, one per
-- system for staff (manual). run counts staff retries: a job only acts on
-- the run it was queued for, so a stale job can never act twice.
CREATE TABLE privacy_request_tasks (
    id           uuid PRIMARY KEY,
    request_id   uuid NOT NULL REFERENCES privacy_requests (id),
    seq          integer NOT NULL,
    system       text NOT NULL,
    dataset      text NOT NULL, -- '' for a manual task covering a whole system
    operation    text NOT NULL CHECK (operation IN ('access', 'erase', 'rectify', 'restrict')),
    mode         text NOT NULL CHECK (mode IN ('automated', 'manual')),
    fields       jsonb NOT NULL,
    instructions text,
    status       text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'canceled')),
    run          integer NOT NULL DEFAULT 1,
    attempts     integer NOT NULL DEFAULT 0,
    result       jsonb,
    error        text,
    completed_by text,
    note         text,
    started_at   timestamptz,
    finished_at  timestamptz,
    UNIQUE (request_id, system, dataset),
    UNIQUE (request_id, seq)
);

-- What access tasks disclosed, sealed per record, until the package is
-- delivered and the request's retention period ends.
CREATE TABLE privacy_request_records (
    task_id    uuid NOT NULL REFERENCES privacy_request_tasks (id),
    seq        integer NOT NULL,
    kid        text NOT NULL,
    ciphertext bytea NOT NULL,
    PRIMARY KEY (task_id, seq)
);

-- Staff reminders sent: the key makes each one at most once.
CREATE TABLE privacy_request_reminders (
    request_id uuid NOT NULL REFERENCES privacy_requests (id),
    kind       text NOT NULL CHECK (kind IN ('7d', '1d', 'overdue')),
    sent_at    timestamptz NOT NULL,
    PRIMARY KEY (request_id, kind)
);

-- +goose Down
DROP TABLE privacy_request_reminders;
DROP TABLE privacy_request_records;
DROP TABLE privacy_request_tasks;
DROP TABLE verification_sends;
DROP TABLE verification_codes;
DROP TABLE privacy_request_identities;
DROP TABLE privacy_request_events;
DROP TABLE privacy_requests;
