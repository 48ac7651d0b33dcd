-- Verification levels (docs/privacy-requests.md, "Verifying who asks"):
-- what the policy asks for (verification_required, from deadlines.rego at
-- intake), what the methods used so far reached (verification_level) and
-- the methods themselves (verification_methods: [{method, level, at,
-- actor}], no secrets, no personal data). A package a reviewer must release
-- first (deadlines.rego package_review) is held: package_held_at until
-- package_released_at. Challenge-login tokens are single use: their jti's
-- SHA-256 is kept until the token would have expired anyway.

-- +goose Up

ALTER TABLE privacy_requests
    ADD COLUMN verification_required text
        CHECK (verification_required IN ('none', 'reasonable', 'high', 'account_login')),
    ADD COLUMN verification_level text
        CHECK (verification_level IN ('none', 'reasonable', 'high', 'account_login')),
    ADD COLUMN verification_methods jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN invoice_attempts integer NOT NULL DEFAULT 0 CHECK (invoice_attempts >= 0),
    ADD COLUMN package_review_required boolean NOT NULL DEFAULT false,
    ADD COLUMN package_held_at timestamptz,
    ADD COLUMN package_released_at timestamptz,
    ADD COLUMN package_released_by text;

-- Requests verified before levels were recorded reached what their one
-- method reaches today; requests still waiting keep the old rule (one
-- email code, "reasonable").
UPDATE privacy_requests SET verification_level = CASE verification
        WHEN 'telegram' THEN 'high' WHEN 'telegram_asserted' THEN 'high' ELSE 'reasonable' END,
    verification_required = 'reasonable'
WHERE verified_at IS NOT NULL;
UPDATE privacy_requests SET verification_required = 'reasonable' WHERE verification_required IS NULL;

ALTER TABLE privacy_request_documents
    ADD COLUMN reviewed_at timestamptz,
    ADD COLUMN reviewed_by text;

CREATE TABLE challenge_login_tokens (
    jti_hash    bytea PRIMARY KEY CHECK (length(jti_hash) = 32),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz NOT NULL
);
CREATE INDEX challenge_login_tokens_expires ON challenge_login_tokens (expires_at);

-- +goose Down

DROP TABLE challenge_login_tokens;
ALTER TABLE privacy_request_documents DROP COLUMN reviewed_at, DROP COLUMN reviewed_by;
ALTER TABLE privacy_requests
    DROP COLUMN verification_required, DROP COLUMN verification_level, DROP COLUMN verification_methods,
    DROP COLUMN invoice_attempts, DROP COLUMN package_review_required, DROP COLUMN package_held_at,
    DROP COLUMN package_released_at, DROP COLUMN package_released_by;
