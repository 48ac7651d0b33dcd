-- Issue 19, the consent side: restrictions that take effect and can be
-- lifted, the announcements of new notice versions, and erasure of the
-- consent ledger's personal data that keeps a pseudonymous proof of
-- opt-outs.

-- +goose Up

-- Restrictions (GDPR Art. 18) are now kept after they are lifted, with who
-- lifted them and why, and name the privacy request that set them. Rows of
-- one request share restriction_id, so staff lift a restriction, not a row.
-- Only one active row per system, dataset and identity.
ALTER TABLE processing_restrictions
    ADD COLUMN id             uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN restriction_id uuid,
    ADD COLUMN request_id     text,
    ADD COLUMN lifted_at      timestamptz,
    ADD COLUMN lifted_by      text,
    ADD COLUMN lift_reason    text;
UPDATE processing_restrictions SET restriction_id = id WHERE restriction_id IS NULL;
ALTER TABLE processing_restrictions ALTER COLUMN restriction_id SET NOT NULL;
ALTER TABLE processing_restrictions DROP CONSTRAINT processing_restrictions_pkey;
ALTER TABLE processing_restrictions ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX processing_restrictions_active
    ON processing_restrictions (system, dataset, lookup_hash) WHERE lifted_at IS NULL;
CREATE INDEX processing_restrictions_group ON processing_restrictions (restriction_id);

-- A major notice change announced to the people who consented under an
-- older major: one row per product and version, so announcing twice is
-- refused rather than messaging everyone again.
CREATE TABLE notice_announcements (
    product      text NOT NULL,
    version      text NOT NULL,
    announced_at timestamptz NOT NULL,
    announced_by text NOT NULL,
    subjects     integer NOT NULL,
    messages     integer NOT NULL,
    PRIMARY KEY (product, version)
);

-- Erasure crypto-shreds a subject: the sealed identity is removed and the
-- keyed hash stays, so a later check still finds the person's opt-outs.
ALTER TABLE subjects ADD COLUMN forgotten_at timestamptz;

-- Consent events stay append-only, with two exceptions made only inside a
-- transaction that sets steward.consent_forget (internal/consent Forget and
-- the control-plane retention sweep): clearing an event's user agent and IP
-- hash, and deleting a grant of an erased person (its refusals and
-- withdrawals stay as proof of the opt-out).
-- +goose StatementBegin
CREATE FUNCTION steward_consent_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('steward.consent_forget', true), '') = 'on' THEN
        IF TG_OP = 'UPDATE'
           AND NEW.user_agent IS NULL AND NEW.ip_hash IS NULL
           AND (NEW.id, NEW.subject_id, NEW.subject_kind, NEW.purpose, NEW.state, NEW.source, NEW.notice_version,
                NEW.jurisdiction, NEW.language, NEW.product, NEW.gpc, NEW.key_id, NEW.policy_revision, NEW.recorded_at)
               IS NOT DISTINCT FROM
               (OLD.id, OLD.subject_id, OLD.subject_kind, OLD.purpose, OLD.state, OLD.source, OLD.notice_version,
                OLD.jurisdiction, OLD.language, OLD.product, OLD.gpc, OLD.key_id, OLD.policy_revision, OLD.recorded_at) THEN
            RETURN NEW;
        END IF;
        -- Only an erased person's grants, and only after the person was
        -- forgotten (their sealed identity removed): the setting alone
        -- cannot take anyone else's proof of consent.
        IF TG_OP = 'DELETE' AND OLD.state = 'granted'
           AND EXISTS (SELECT 1 FROM subjects WHERE id = OLD.subject_id AND forgotten_at IS NOT NULL) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

DROP TRIGGER consent_events_append_only ON consent_events;
CREATE TRIGGER consent_events_append_only
    BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION steward_consent_events_guard();

-- +goose Down

DROP TRIGGER consent_events_append_only ON consent_events;
CREATE TRIGGER consent_events_append_only
    BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION steward_refuse_change();
DROP FUNCTION steward_consent_events_guard();
ALTER TABLE subjects DROP COLUMN forgotten_at;
DROP TABLE notice_announcements;
DROP INDEX processing_restrictions_group;
DROP INDEX processing_restrictions_active;
DELETE FROM processing_restrictions WHERE lifted_at IS NOT NULL;
ALTER TABLE processing_restrictions DROP CONSTRAINT processing_restrictions_pkey;
ALTER TABLE processing_restrictions ADD PRIMARY KEY (system, dataset, lookup_hash);
ALTER TABLE processing_restrictions
    DROP COLUMN lift_reason, DROP COLUMN lifted_by, DROP COLUMN lifted_at,
    DROP COLUMN request_id, DROP COLUMN restriction_id, DROP COLUMN id;
