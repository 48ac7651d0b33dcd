-- Job leases: a replica working a durable job holds a short lease on it,
-- renewed every few seconds while the job runs. A lease that lapsed means
-- the replica died (kill -9, lost host): any replica hands the job back to
-- the queue at once instead of waiting for River's rescuer (JobTimeout
-- plus minutes). One row per running job; the worker deletes it when the
-- job returns.

-- +goose Up

CREATE TABLE job_leases (
    job_id     bigint PRIMARY KEY,
    owner      text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- The sweep looks for lapsed leases.
CREATE INDEX job_leases_expires_at ON job_leases (expires_at);

-- +goose Down

DROP TABLE job_leases;
