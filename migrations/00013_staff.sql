-- Compliance staff and their sign-in to the console (internal/staff).
--
-- Staff emails and names are staff data, not data subjects' personal data,
-- so they are stored in the clear (the console lists them). Secrets are
-- not: passwords are argon2id hashes, TOTP secrets and PKCE verifiers are
-- sealed with the identity keyring (bound to their row), session and
-- pending sign-in tokens and OIDC states are stored only as SHA-256, and
-- IP addresses only as a keyed hash.

-- +goose Up
CREATE TABLE staff_accounts (
    id              uuid PRIMARY KEY,
    email           text NOT NULL UNIQUE CHECK (email = lower(email) AND email <> ''),
    name            text NOT NULL,
    role            text NOT NULL,
    password_hash   text NOT NULL,
    disabled        boolean NOT NULL DEFAULT false,
    -- The enrolled TOTP secret (sealed, aad = account id) and the last
    -- 30-second step a code was accepted for: a step is never accepted
    -- twice, so an overheard code cannot be replayed.
    totp_kid        text,
    totp_ct         bytea,
    totp_last_step  bigint,
    -- Consecutive failed sign-in steps (password or second factor) since
    -- the last success or lock; at the limit the account is locked.
    failed_attempts integer NOT NULL DEFAULT 0,
    last_failure_at timestamptz,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    last_sign_in    timestamptz,
    CHECK ((totp_kid IS NULL) = (totp_ct IS NULL))
);

-- Passkeys (WebAuthn credentials): public keys only. credential is the
-- library's credential record as JSON (public key, flags, authenticator);
-- sign_count is kept in its own column so a concurrent sign-in with the
-- same credential is caught by a compare-and-set.
CREATE TABLE staff_passkeys (
    id            bytea PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    credential    jsonb NOT NULL,
    sign_count    bigint NOT NULL DEFAULT 0,
    clone_warning boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz
);
CREATE INDEX staff_passkeys_account ON staff_passkeys (account_id);

-- A sign-in past its first step (password or single sign-on), waiting for
-- the second factor. It also carries what the ceremony in progress needs
-- between two requests, which may reach different replicas: a TOTP secret
-- being enrolled (sealed) and the WebAuthn ceremony's session data.
CREATE TABLE staff_pending (
    token_hash       bytea PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    first_factor     text NOT NULL CHECK (first_factor IN ('password', 'oidc')),
    enrol_totp_kid   text,
    enrol_totp_ct    bytea,
    webauthn_kind    text CHECK (webauthn_kind IN ('register', 'login')),
    webauthn_session jsonb,
    ip_hash          bytea,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL
);
CREATE INDEX staff_pending_account ON staff_pending (account_id);
CREATE INDEX staff_pending_expires ON staff_pending (expires_at);

CREATE TABLE staff_sessions (
    id               uuid PRIMARY KEY,
    token_hash       bytea NOT NULL UNIQUE,
    account_id       uuid NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    method           text NOT NULL CHECK (method IN ('totp', 'passkey', 'oidc')),
    ip_hash          bytea,
    created_at       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    absolute_expires timestamptz NOT NULL
);
CREATE INDEX staff_sessions_account ON staff_sessions (account_id, created_at);
CREATE INDEX staff_sessions_absolute ON staff_sessions (absolute_expires);

-- Single sign-on in flight: the state (hashed; the browser holds it in a
-- cookie), the nonce the ID token must carry (hashed) and the PKCE
-- verifier (sealed, aad = the state hash). Consumed by the callback.
CREATE TABLE staff_oidc_states (
    state_hash  bytea PRIMARY KEY,
    nonce_hash  bytea NOT NULL,
    verifier_kid text NOT NULL,
    verifier_ct bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX staff_oidc_states_expires ON staff_oidc_states (expires_at);

-- +goose Down
DROP TABLE staff_oidc_states;
DROP TABLE staff_sessions;
DROP TABLE staff_pending;
DROP TABLE staff_passkeys;
DROP TABLE staff_accounts;
