-- GDPR Art. 19: a rectification, erasure or restriction is communicated to
-- each recipient the person's data was disclosed to, and the person may ask
-- who they were. One row per request and recipient system: how it was told
-- (through the connector that acted on it, by the manual task staff
-- completed in its console, by email to its privacy contact, or still to
-- be done by staff) and when that was confirmed. Recipients are systems of
-- the data map, named by id: no personal data here.

-- +goose Up

CREATE TABLE recipient_notifications (
    request_id   uuid NOT NULL REFERENCES privacy_requests (id),
    system       text NOT NULL,
    method       text NOT NULL CHECK (method IN ('connector', 'manual_task', 'email', 'staff')),
    status       text NOT NULL CHECK (status IN ('done', 'queued', 'pending')),
    created_at   timestamptz NOT NULL,
    done_at      timestamptz,
    done_by      text,
    note         text,
    PRIMARY KEY (request_id, system)
);

-- +goose Down

DROP TABLE recipient_notifications;
