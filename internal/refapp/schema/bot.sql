-- Reference schema of the Telegram bot "Bananapics": the tables of the data
-- map's system bot_db. Tests, benchmarks and the `make run` demo create it
-- with refapp.CreateSchema; names are unqualified, the caller picks the schema.
--
-- It must match policies/data/datamap.yaml: every bot_db dataset is a table
-- here under the same name, every mapped field is a column, and every
-- reference within bot_db is a foreign key (refapp's tests check all three).
-- ON DELETE actions differ on purpose, as in a real bot: generation history
-- and opt-outs go with the user (CASCADE), payments and the credit ledger
-- must not vanish with them (RESTRICT / NO ACTION), request logs only lose
-- the link (SET NULL).
--
-- Columns not in the data map hold no personal data; processing_restricted
-- is the flag Steward's connector sets to restrict processing (GDPR Art. 18).
-- Every statement is idempotent, so the demo can run it on every start.

-- Telegram's user id is the key: the bot never sees any other identity.
CREATE TABLE IF NOT EXISTS tg_users (
    tg_id                 bigint PRIMARY KEY,
    username              text,
    first_name            text NOT NULL,
    last_name             text,
    language              text NOT NULL DEFAULT 'en' CHECK (language IN ('uz', 'ru', 'en')),
    credits_balance       integer NOT NULL DEFAULT 0,
    is_blocked            boolean NOT NULL DEFAULT false,
    processing_restricted boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS tg_generations (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tg_user_id           bigint NOT NULL REFERENCES tg_users (tg_id) ON DELETE CASCADE,
    prompt               text NOT NULL,
    model                text NOT NULL,
    parameters           jsonb NOT NULL DEFAULT '{}',
    reference_file_ids   text[] NOT NULL DEFAULT '{}',
    reference_urls       text[] NOT NULL DEFAULT '{}',
    wavespeed_request_id text,
    result_url           text,
    status               text NOT NULL,
    error                text,
    credits_spent        integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    completed_at         timestamptz,
    CONSTRAINT tg_generations_wavespeed_request_id_key UNIQUE (wavespeed_request_id)
);
CREATE INDEX IF NOT EXISTS tg_generations_tg_user_id_idx ON tg_generations (tg_user_id);

-- Payments are accounting records: RESTRICT.
CREATE TABLE IF NOT EXISTS tg_payments (
    id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tg_user_id                 bigint NOT NULL REFERENCES tg_users (tg_id) ON DELETE RESTRICT,
    telegram_payment_charge_id text NOT NULL,
    invoice_payload            text NOT NULL,
    stars_amount               integer NOT NULL,
    credits                    integer NOT NULL,
    status                     text NOT NULL,
    refunded_at                timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tg_payments_telegram_payment_charge_id_key UNIQUE (telegram_payment_charge_id)
);
CREATE INDEX IF NOT EXISTS tg_payments_tg_user_id_idx ON tg_payments (tg_user_id);

-- The ledger must not vanish with the user or a payment; a deleted
-- generation only loses its link.
CREATE TABLE IF NOT EXISTS tg_credit_transactions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tg_user_id    bigint NOT NULL REFERENCES tg_users (tg_id) ON DELETE NO ACTION,
    delta         integer NOT NULL,
    balance_after integer NOT NULL,
    reason        text NOT NULL,
    generation_id uuid REFERENCES tg_generations (id) ON DELETE SET NULL,
    payment_id    uuid REFERENCES tg_payments (id) ON DELETE RESTRICT,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tg_credit_transactions_tg_user_id_idx ON tg_credit_transactions (tg_user_id);
CREATE INDEX IF NOT EXISTS tg_credit_transactions_generation_id_idx ON tg_credit_transactions (generation_id);
CREATE INDEX IF NOT EXISTS tg_credit_transactions_payment_id_idx ON tg_credit_transactions (payment_id);

-- A referral belongs to both people; deleting either must be decided, not
-- cascaded into the other's record (NO ACTION on both sides). A person is
-- referred at most once.
CREATE TABLE IF NOT EXISTS tg_referrals (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    referrer_tg_id bigint NOT NULL REFERENCES tg_users (tg_id) ON DELETE NO ACTION,
    referee_tg_id  bigint NOT NULL REFERENCES tg_users (tg_id) ON DELETE NO ACTION,
    bonus_credits  integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tg_referrals_referee_tg_id_key UNIQUE (referee_tg_id),
    CONSTRAINT tg_referrals_not_self CHECK (referrer_tg_id <> referee_tg_id)
);
CREATE INDEX IF NOT EXISTS tg_referrals_referrer_tg_id_idx ON tg_referrals (referrer_tg_id);

CREATE TABLE IF NOT EXISTS tg_broadcast_optouts (
    tg_user_id   bigint PRIMARY KEY REFERENCES tg_users (tg_id) ON DELETE CASCADE,
    opted_out_at timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL
);

CREATE TABLE IF NOT EXISTS tg_request_logs (
    request_id  text PRIMARY KEY,
    tg_user_id  bigint REFERENCES tg_users (tg_id) ON DELETE SET NULL,
    update_type text NOT NULL,
    latency_ms  integer NOT NULL,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tg_request_logs_tg_user_id_idx ON tg_request_logs (tg_user_id);
