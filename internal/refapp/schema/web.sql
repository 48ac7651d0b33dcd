-- Reference schema of the web product "Nano Banana Pro": the tables of the
-- data map's system app_db (Better Auth tables, billing, credits, AI jobs,
-- support, marketing). Tests, benchmarks and the `make run` demo create it
-- with refapp.CreateSchema; names are unqualified, the caller picks the schema.
--
-- It must match policies/data/datamap.yaml: every app_db dataset is a table
-- here under the same name, every mapped field is a column, and every
-- reference within app_db is a foreign key (refapp's tests check all three).
-- ON DELETE actions differ on purpose, as in a real application: sign-in data
-- goes with the account (CASCADE), accounting records must not vanish with it
-- (RESTRICT / NO ACTION), and records worth keeping lose the link (SET NULL).
--
-- Columns not in the data map hold no personal data; processing_restricted
-- is the flag Steward's connector sets to restrict processing (GDPR Art. 18).
-- Every statement is idempotent, so the demo can run it on every start.

CREATE TABLE IF NOT EXISTS users (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    email                 text NOT NULL,
    email_verified        boolean NOT NULL DEFAULT false,
    image                 text,
    language              text NOT NULL DEFAULT 'en',
    stripe_customer_id    text,
    creem_customer_id     text,
    role                  text NOT NULL DEFAULT 'user',
    banned                boolean NOT NULL DEFAULT false,
    ban_reason            text,
    processing_restricted boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_stripe_customer_id_key UNIQUE (stripe_customer_id),
    CONSTRAINT users_creem_customer_id_key UNIQUE (creem_customer_id)
);
-- Steward compares email identities case-insensitively (lower(email) =
-- the normalised address); these lower() indexes serve that lookup here and
-- on the other tables keyed by an address.
CREATE INDEX IF NOT EXISTS users_email_lower_idx ON users (lower(email));

-- Better Auth: one row per sign-in method. For email sign-in provider_id is
-- 'credential' and account_id is the user id.
CREATE TABLE IF NOT EXISTS accounts (
    id            text PRIMARY KEY,
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_id   text NOT NULL,
    account_id    text NOT NULL,
    access_token  text,
    refresh_token text,
    id_token      text,
    password      text,
    scope         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_provider_account_key UNIQUE (provider_id, account_id)
);
CREATE INDEX IF NOT EXISTS accounts_user_id_idx ON accounts (user_id);

-- impersonated_by is the staff user's id as Better Auth's admin plugin
-- stores it: plain text, no foreign key, so it survives the staff account.
CREATE TABLE IF NOT EXISTS sessions (
    id              text PRIMARY KEY,
    user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token           text NOT NULL,
    ip_address      text,
    user_agent      text,
    impersonated_by text,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sessions_token_key UNIQUE (token)
);
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions (user_id);

-- Keyed by the address the token was sent to, not by user: a token can
-- exist before the account does.
CREATE TABLE IF NOT EXISTS verifications (
    id         text PRIMARY KEY,
    identifier text NOT NULL,
    value      text NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS verifications_identifier_idx ON verifications (identifier);
CREATE INDEX IF NOT EXISTS verifications_identifier_lower_idx ON verifications (lower(identifier));

-- An audit trail of staff access: NO ACTION, so deleting the account does
-- not silently delete the record of who looked at it.
CREATE TABLE IF NOT EXISTS impersonation_logs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       text NOT NULL REFERENCES users (id) ON DELETE NO ACTION,
    admin_user_id text NOT NULL,
    reason        text NOT NULL,
    ip_address    inet,
    started_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz
);
CREATE INDEX IF NOT EXISTS impersonation_logs_user_id_idx ON impersonation_logs (user_id);

CREATE TABLE IF NOT EXISTS risk_flags (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    reason      text,
    score       numeric(5, 2) NOT NULL,
    ip_address  inet,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE INDEX IF NOT EXISTS risk_flags_user_id_idx ON risk_flags (user_id);

-- The visitor id predates the account; deleting the account leaves the
-- visitor as anonymous as it was before sign-up (SET NULL).
CREATE TABLE IF NOT EXISTS visitors (
    id            text PRIMARY KEY,
    user_id       text REFERENCES users (id) ON DELETE SET NULL,
    ip_address    text,
    user_agent    text,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS visitors_user_id_idx ON visitors (user_id);

CREATE TABLE IF NOT EXISTS usage_quotas (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          text REFERENCES users (id) ON DELETE CASCADE,
    visitor_id       text REFERENCES visitors (id) ON DELETE CASCADE,
    period_start     timestamptz NOT NULL,
    uploads_used     integer NOT NULL DEFAULT 0,
    generations_used integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_quotas_owner_check CHECK (user_id IS NOT NULL OR visitor_id IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS usage_quotas_user_id_idx ON usage_quotas (user_id);
CREATE INDEX IF NOT EXISTS usage_quotas_visitor_id_idx ON usage_quotas (visitor_id);

CREATE TABLE IF NOT EXISTS subscriptions (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                  text NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    provider                 text NOT NULL CHECK (provider IN ('stripe', 'creem')),
    provider_subscription_id text NOT NULL,
    plan                     text NOT NULL,
    status                   text NOT NULL,
    current_period_end       timestamptz,
    canceled_at              timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_provider_subscription_id_key UNIQUE (provider_subscription_id)
);
CREATE INDEX IF NOT EXISTS subscriptions_user_id_idx ON subscriptions (user_id);

-- Amounts are integer minor units (cents) in currency.
CREATE TABLE IF NOT EXISTS payments (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             text NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    provider            text NOT NULL CHECK (provider IN ('stripe', 'creem')),
    provider_payment_id text NOT NULL,
    checkout_session_id text,
    amount              integer NOT NULL,
    currency            text NOT NULL,
    status              text NOT NULL,
    refunded_amount     integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_provider_payment_id_key UNIQUE (provider_payment_id)
);
CREATE INDEX IF NOT EXISTS payments_user_id_idx ON payments (user_id);

CREATE TABLE IF NOT EXISTS invoices (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             text NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    payment_id          uuid REFERENCES payments (id) ON DELETE RESTRICT,
    number              text NOT NULL,
    provider_invoice_id text,
    billing_name        text NOT NULL,
    billing_email       text NOT NULL,
    billing_address     text,
    tax_id              text,
    amount              integer NOT NULL,
    tax_amount          integer NOT NULL DEFAULT 0,
    currency            text NOT NULL,
    pdf_url             text,
    issued_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_number_key UNIQUE (number),
    CONSTRAINT invoices_provider_invoice_id_key UNIQUE (provider_invoice_id)
);
CREATE INDEX IF NOT EXISTS invoices_user_id_idx ON invoices (user_id);
CREATE INDEX IF NOT EXISTS invoices_payment_id_idx ON invoices (payment_id);

-- Tax law keeps billing details with the invoices: NO ACTION.
CREATE TABLE IF NOT EXISTS billing_profiles (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       text NOT NULL REFERENCES users (id) ON DELETE NO ACTION,
    full_name     text NOT NULL,
    company_name  text,
    address_line1 text NOT NULL,
    address_line2 text,
    city          text NOT NULL,
    postal_code   text,
    country       text NOT NULL,
    vat_id        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT billing_profiles_user_id_key UNIQUE (user_id)
);

CREATE TABLE IF NOT EXISTS credit_balances (
    user_id    text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    balance    integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS credit_grants (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    payment_id uuid REFERENCES payments (id) ON DELETE SET NULL,
    pack       text,
    credits    integer NOT NULL,
    remaining  integer NOT NULL,
    source     text NOT NULL,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS credit_grants_user_id_idx ON credit_grants (user_id);
CREATE INDEX IF NOT EXISTS credit_grants_payment_id_idx ON credit_grants (payment_id);

-- Jobs come before credit_transactions, which points at them.
CREATE TABLE IF NOT EXISTS generation_jobs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             text REFERENCES users (id) ON DELETE CASCADE,
    visitor_id          text REFERENCES visitors (id) ON DELETE SET NULL,
    batch_id            uuid,
    prompt              text NOT NULL,
    negative_prompt     text,
    style_tags          text[] NOT NULL DEFAULT '{}',
    seed                bigint,
    parameters          jsonb NOT NULL DEFAULT '{}',
    output_format       text NOT NULL DEFAULT 'png',
    output_count        integer NOT NULL DEFAULT 1,
    model               text NOT NULL,
    provider_request_id text,
    status              text NOT NULL,
    safety_flags        text[] NOT NULL DEFAULT '{}',
    error               text,
    runtime_ms          integer,
    created_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    CONSTRAINT generation_jobs_provider_request_id_key UNIQUE (provider_request_id)
);
CREATE INDEX IF NOT EXISTS generation_jobs_user_id_idx ON generation_jobs (user_id);
CREATE INDEX IF NOT EXISTS generation_jobs_visitor_id_idx ON generation_jobs (visitor_id);

CREATE TABLE IF NOT EXISTS job_assets (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id     uuid NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    object_key text NOT NULL,
    signed_url text,
    width      integer,
    height     integer,
    bytes      bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS job_assets_job_id_idx ON job_assets (job_id);

-- The credit ledger is an accounting record (RESTRICT on the account and
-- the payment); a deleted job or grant only loses its link.
CREATE TABLE IF NOT EXISTS credit_transactions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       text NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    delta         integer NOT NULL,
    balance_after integer NOT NULL,
    reason        text NOT NULL,
    grant_id      uuid REFERENCES credit_grants (id) ON DELETE NO ACTION,
    job_id        uuid REFERENCES generation_jobs (id) ON DELETE SET NULL,
    payment_id    uuid REFERENCES payments (id) ON DELETE RESTRICT,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS credit_transactions_user_id_idx ON credit_transactions (user_id);
CREATE INDEX IF NOT EXISTS credit_transactions_grant_id_idx ON credit_transactions (grant_id);
CREATE INDEX IF NOT EXISTS credit_transactions_job_id_idx ON credit_transactions (job_id);
CREATE INDEX IF NOT EXISTS credit_transactions_payment_id_idx ON credit_transactions (payment_id);

CREATE TABLE IF NOT EXISTS disputes (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             text NOT NULL REFERENCES users (id) ON DELETE NO ACTION,
    payment_id          uuid NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    provider_dispute_id text NOT NULL,
    reason              text NOT NULL,
    status              text NOT NULL,
    amount              integer NOT NULL,
    evidence            text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    closed_at           timestamptz,
    CONSTRAINT disputes_provider_dispute_id_key UNIQUE (provider_dispute_id)
);
CREATE INDEX IF NOT EXISTS disputes_user_id_idx ON disputes (user_id);
CREATE INDEX IF NOT EXISTS disputes_payment_id_idx ON disputes (payment_id);

CREATE TABLE IF NOT EXISTS migration_records (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    legacy_user_id text NOT NULL,
    source         text NOT NULL,
    details        jsonb NOT NULL DEFAULT '{}',
    migrated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS migration_records_user_id_idx ON migration_records (user_id);

-- Tickets also arrive by email from people without an account, so a ticket
-- outlives the account (SET NULL) and is found by its email too.
CREATE TABLE IF NOT EXISTS support_tickets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     text REFERENCES users (id) ON DELETE SET NULL,
    email       text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    status      text NOT NULL DEFAULT 'open',
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE INDEX IF NOT EXISTS support_tickets_user_id_idx ON support_tickets (user_id);
CREATE INDEX IF NOT EXISTS support_tickets_email_idx ON support_tickets (email);
CREATE INDEX IF NOT EXISTS support_tickets_email_lower_idx ON support_tickets (lower(email));

CREATE TABLE IF NOT EXISTS support_messages (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    ticket_id  uuid NOT NULL REFERENCES support_tickets (id) ON DELETE CASCADE,
    author     text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS support_messages_ticket_id_idx ON support_messages (ticket_id);

-- Keyed by email: an unsubscribe must be remembered even after the account
-- is gone, so the row only loses its user link (SET NULL).
CREATE TABLE IF NOT EXISTS newsletter_preferences (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         text REFERENCES users (id) ON DELETE SET NULL,
    email           text NOT NULL,
    subscribed      boolean NOT NULL DEFAULT false,
    topics          text[] NOT NULL DEFAULT '{}',
    source          text NOT NULL,
    consented_at    timestamptz,
    unsubscribed_at timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT newsletter_preferences_email_key UNIQUE (email)
);
CREATE INDEX IF NOT EXISTS newsletter_preferences_user_id_idx ON newsletter_preferences (user_id);
CREATE INDEX IF NOT EXISTS newsletter_preferences_email_lower_idx ON newsletter_preferences (lower(email));

CREATE TABLE IF NOT EXISTS survey_responses (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    survey     text NOT NULL,
    answers    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS survey_responses_user_id_idx ON survey_responses (user_id);
