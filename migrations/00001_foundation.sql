-- Foundation: API keys, subjects (identities), and the consent ledger.

-- +goose Up

-- API keys are stored only as a SHA-256 of the secret: the secret is shown once
-- at creation. Keys are high-entropy random tokens, so a fast hash is enough
-- (a slow password hash would only cost latency on every request).
CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL,
    secret_hash bytea NOT NULL UNIQUE,
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- A subject is one identity (email:…, tg:…, visitor:…). The value is never
-- stored in the clear: lookup_hash is an HMAC under key hash_kid, ciphertext is
-- AES-256-GCM under key enc_kid.
CREATE TABLE subjects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    lookup_hash bytea NOT NULL UNIQUE,
    hash_kid    text NOT NULL,
    ciphertext  bytea NOT NULL,
    enc_kid     text NOT NULL,
    gpc_at      timestamptz,
    created_at  timestamptz NOT NULL
);

-- Links between identities the front ends told us belong to one person
-- (user:42 has email:ann@…), so a marketing withdrawal reaches the mailbox.
CREATE TABLE subject_links (
    subject_id bigint NOT NULL REFERENCES subjects (id),
    linked_id  bigint NOT NULL REFERENCES subjects (id),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (subject_id, linked_id),
    CHECK (subject_id <> linked_id)
);
CREATE INDEX subject_links_linked ON subject_links (linked_id);

-- The consent ledger: append-only events; consent_state is derived from them
-- in the same transaction as each insert.
CREATE TABLE consent_events (
    id              uuid PRIMARY KEY,
    subject_id      bigint NOT NULL REFERENCES subjects (id),
    subject_kind    text NOT NULL,
    purpose         text NOT NULL,
    state           text NOT NULL CHECK (state IN ('granted', 'denied', 'withdrawn')),
    source          text NOT NULL CHECK (source IN ('web_banner', 'web_settings', 'bot', 'api', 'gpc')),
    notice_version  text NOT NULL,
    jurisdiction    text,
    language        text,
    product         text NOT NULL,
    gpc             boolean NOT NULL,
    user_agent      text,
    ip_hash         bytea,
    key_id          text,
    policy_revision text NOT NULL,
    recorded_at     timestamptz NOT NULL
);
CREATE INDEX consent_events_subject ON consent_events (subject_id, recorded_at DESC, id DESC);

CREATE TABLE consent_state (
    subject_id     bigint NOT NULL REFERENCES subjects (id),
    purpose        text NOT NULL,
    state          text NOT NULL,
    source         text NOT NULL,
    notice_version text NOT NULL,
    gpc            boolean NOT NULL,
    event_id       uuid NOT NULL REFERENCES consent_events (id),
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (subject_id, purpose)
);

-- Consent events are proof: the database itself refuses to change them.
-- +goose StatementBegin
CREATE FUNCTION steward_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER consent_events_append_only
    BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION steward_refuse_change();
CREATE TRIGGER consent_events_no_truncate
    BEFORE TRUNCATE ON consent_events
    FOR EACH STATEMENT EXECUTE FUNCTION steward_refuse_change();

-- +goose Down
DROP TABLE consent_state;
DROP TABLE consent_events;
DROP FUNCTION steward_refuse_change();
DROP TABLE subject_links;
DROP TABLE subjects;
DROP TABLE api_keys;
