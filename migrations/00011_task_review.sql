-- Review items: records a task reached but left alone because they are not
-- the person's alone (an address others share, a row with another owner, a
-- relationship between two parties). The connector returns them with its
-- result (privacy_request_tasks.result -> 'review': dataset, reference,
-- reason and counts, never personal values); the request still completes,
-- since the person's own data was handled, and staff review the items and
-- acknowledge them with a note.
--
-- review_items counts a task's items, kept by the database from the
-- result, so the staff list can show and filter requests with open items
-- without reading every result.

-- +goose Up

ALTER TABLE privacy_request_tasks
    ADD COLUMN review_items integer NOT NULL GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(result -> 'review') = 'array' THEN jsonb_array_length(result -> 'review') ELSE 0 END
    ) STORED,
    ADD COLUMN review_acknowledged_at timestamptz,
    ADD COLUMN review_acknowledged_by text,
    ADD COLUMN review_note            text,
    ADD CONSTRAINT privacy_request_tasks_review_acknowledged
        CHECK ((review_acknowledged_at IS NULL) = (review_acknowledged_by IS NULL));

-- Requests with review items staff have not acknowledged yet.
CREATE INDEX privacy_request_tasks_review_open ON privacy_request_tasks (request_id)
    WHERE review_items > 0 AND review_acknowledged_at IS NULL;

-- +goose Down

DROP INDEX privacy_request_tasks_review_open;
ALTER TABLE privacy_request_tasks
    DROP CONSTRAINT privacy_request_tasks_review_acknowledged,
    DROP COLUMN review_note,
    DROP COLUMN review_acknowledged_by,
    DROP COLUMN review_acknowledged_at,
    DROP COLUMN review_items;
