-- GDPR Art. 19 by signed webhook: a processor that runs an endpoint for
-- data-subject notices registers it with the data-map system it runs
-- (recipient_system); a completed erasure, rectification or restriction
-- that reached that system's data is sent there as recipient.notice, and
-- the notice counts as told once the processor's endpoint accepted it
-- (the delivery's 2xx).

-- +goose Up

ALTER TABLE webhook_endpoints ADD COLUMN recipient_system text;
ALTER TABLE recipient_notifications ADD COLUMN delivery_ids uuid[] NOT NULL DEFAULT '{}';
ALTER TABLE recipient_notifications DROP CONSTRAINT recipient_notifications_method_check;
ALTER TABLE recipient_notifications ADD CONSTRAINT recipient_notifications_method_check
    CHECK (method IN ('connector', 'manual_task', 'email', 'webhook', 'staff'));

-- +goose Down

DELETE FROM recipient_notifications WHERE method = 'webhook';
ALTER TABLE recipient_notifications DROP CONSTRAINT recipient_notifications_method_check;
ALTER TABLE recipient_notifications ADD CONSTRAINT recipient_notifications_method_check
    CHECK (method IN ('connector', 'manual_task', 'email', 'staff'));
ALTER TABLE recipient_notifications DROP COLUMN delivery_ids;
ALTER TABLE webhook_endpoints DROP COLUMN recipient_system;
