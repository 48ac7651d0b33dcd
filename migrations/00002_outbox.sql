-- Transactional outbox: messages to outside systems (today: marking a contact
-- unsubscribed in Resend) are written in the same transaction as the consent
-- change that causes them, so a withdrawal can never be recorded while its
-- side effect is lost, and a worker delivers them when the far side is up.

-- +goose Up

CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What to do, e.g. 'resend.contact.unsubscribe'; not personal data.
    kind            text NOT NULL,
    -- Never personal data in the clear: an email travels as AES-256-GCM
    -- ciphertext plus the id of the key that sealed it. Emptied once the
    -- message is delivered, because nothing needs it after that.
    payload         jsonb NOT NULL,
    -- Sent as the Idempotency-Key header on every attempt, so a retry after a
    -- lost response (or a crash before commit) cannot act twice.
    idempotency_key uuid NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    -- Written by the worker with email addresses redacted.
    last_error      text,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    failed_at       timestamptz,
    -- The terminal timestamps say when a row reached its state; keeping them
    -- in step with status lets reports trust either column.
    CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)),
    CHECK ((status = 'failed') = (failed_at IS NOT NULL))
);

-- Workers only ever look for due pending rows; delivered and failed rows pile
-- up over time, so the index leaves them out and stays small.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';

-- +goose Down
DROP TABLE outbox;
