-- Files an access task disclosed (uploads, generated images): the content
-- lives in the file store (a gocloud.dev/blob bucket), sealed in chunks
-- with AES-256-GCM under a key of its own (internal/sealstream); the key,
-- wrapped by the master keyring, and the file's description (dataset,
-- object key, name: personal data, an object key usually holds the user id)
-- live here, sealed. Rows go with their task's run: a retried access task
-- deletes its rows and blobs and writes them again.

-- +goose Up

CREATE TABLE privacy_request_files (
    task_id     uuid NOT NULL REFERENCES privacy_request_tasks (id),
    seq         integer NOT NULL,
    blob_key    text NOT NULL,
    kid         text NOT NULL,
    wrapped_key bytea NOT NULL,
    meta        bytea NOT NULL,
    size        bigint NOT NULL CHECK (size >= 0),
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    PRIMARY KEY (task_id, seq)
);

-- +goose Down

DROP TABLE privacy_request_files;
