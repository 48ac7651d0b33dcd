-- Task order: an erasure in a relational database must go children first.
-- If the task erasing users ran before the ones erasing sessions or
-- generation_jobs, the database would refuse (RESTRICT / NO ACTION foreign
-- keys) or cascade (deleting rows another task should have counted, or that
-- must be retained), and the outcome would depend on which job ran first.
--
-- after lists the seq numbers of the same request's tasks that must have
-- succeeded before this one is queued (the plan computes them; see
-- internal/dsar/order.go). Only automated erase tasks have any; the plan
-- breaks cycles, so a request can always make progress.

-- +goose Up

ALTER TABLE privacy_request_tasks
    ADD COLUMN after integer[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT privacy_request_tasks_not_after_itself CHECK (NOT (seq = ANY (after)));

-- +goose Down
ALTER TABLE privacy_request_tasks
    DROP CONSTRAINT privacy_request_tasks_not_after_itself,
    DROP COLUMN after;
