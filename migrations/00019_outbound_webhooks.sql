-- Outbound webhooks (Standard Webhooks): endpoints staff register, one
-- delivery per event and endpoint, and every attempt to send it. Consent
-- changes reach the bot backend and other subscribers this way (GDPR Art.
-- 21(3): an objection to direct marketing stops it everywhere; Art. 19:
-- recipients are told of restrictions), written in the same transaction as
-- the change through the outbox (kind 'webhook.deliver').

-- +goose Up

CREATE TABLE webhook_endpoints (
    id                 uuid PRIMARY KEY,
    url                text NOT NULL,
    description        text NOT NULL DEFAULT '',
    -- Empty: every event type.
    event_types        text[] NOT NULL DEFAULT '{}',
    -- Whether consent.changed carries the subject's identity ("tg:42")
    -- rather than only its keyed hash; set by staff for a system that
    -- already holds the identity (the bot backend).
    include_identities boolean NOT NULL DEFAULT false,
    -- Registered while STEWARD_WEBHOOKS_ALLOW_LOOPBACK was on: the only
    -- endpoints the sender may dial on a loopback address.
    allow_loopback     boolean NOT NULL DEFAULT false,
    enabled            boolean NOT NULL DEFAULT true,
    disabled_reason    text,
    -- The signing secret, sealed with the identity keyring (AAD bound to
    -- the endpoint id); shown to staff once, never stored in the clear.
    secret_kid         text NOT NULL,
    secret_ct          bytea NOT NULL,
    -- The secret a rotation replaced: still signs until prev_expires_at.
    prev_secret_kid    text,
    prev_secret_ct     bytea,
    prev_expires_at    timestamptz,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    deleted_at         timestamptz
);

CREATE TABLE webhook_deliveries (
    id            uuid PRIMARY KEY,
    endpoint_id   uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The webhook-id header: the same on every attempt and replay.
    message_id    text NOT NULL,
    event_type    text NOT NULL,
    -- The body as sent, sealed (it may name the subject); kept for replay.
    body_kid      text NOT NULL,
    body_ct       bytea NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    last_attempt_at timestamptz,
    delivered_at  timestamptz,
    replays       integer NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);

CREATE TABLE webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL,
    status_code  integer,
    latency_ms   integer NOT NULL,
    -- Redacted: never the URL's query, never the body Steward sent.
    error        text,
    -- At most 256 bytes of what the receiver answered.
    response_excerpt text
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
