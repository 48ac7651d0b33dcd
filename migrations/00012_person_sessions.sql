-- The privacy center's own sign-in, for a person managing their consent:
-- a one-time code emailed to the address (person_signin_codes), then a
-- short session (person_sessions). Nothing here is personal data in the
-- clear: the address is a keyed hash for the send limits and sealed in the
-- session (the page shows it back, masked); codes and session tokens are
-- stored as hashes.

-- +goose Up
CREATE TABLE person_signin_codes (
    id           uuid PRIMARY KEY,
    subject_hash bytea NOT NULL,
    subject_kid  text NOT NULL,
    subject_ct   bytea NOT NULL,
    product      text NOT NULL,
    code_hash    bytea NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    ip_hash      bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX person_signin_codes_subject ON person_signin_codes (subject_hash, created_at);
CREATE INDEX person_signin_codes_ip ON person_signin_codes (ip_hash, created_at);

CREATE TABLE person_sessions (
    token_hash   bytea PRIMARY KEY,
    subject_kid  text NOT NULL,
    subject_ct   bytea NOT NULL,
    product      text NOT NULL,
    method       text NOT NULL CHECK (method IN ('email_code', 'telegram_init_data')),
    created_at   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX person_sessions_expires ON person_sessions (expires_at);

-- +goose Down
DROP TABLE person_sessions;
DROP TABLE person_signin_codes;
