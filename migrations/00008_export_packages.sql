-- Export packages: the ZIP an access or portability request produces, kept
-- in the export store sealed in chunks (internal/sealstream) under a key of
-- its own, wrapped by the master keyring. The person downloads it through a
-- signed link that expires; only the link's SHA-256 is kept here, so the
-- table alone cannot be used to download anything. Downloads are counted
-- (and audited); an expired package's blob is deleted and the row kept as
-- the record that it existed.

-- +goose Up

CREATE TABLE export_packages (
    id               uuid PRIMARY KEY,
    request_id       uuid NOT NULL REFERENCES privacy_requests (id),
    blob_key         text NOT NULL,
    kid              text NOT NULL,
    wrapped_key      bytea NOT NULL,
    token_hash       bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    size             bigint NOT NULL CHECK (size >= 0),
    sha256           bytea NOT NULL CHECK (length(sha256) = 32),
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    downloads        integer NOT NULL DEFAULT 0,
    last_download_at timestamptz,
    deleted_at       timestamptz
);

CREATE INDEX export_packages_request ON export_packages (request_id);
CREATE INDEX export_packages_due ON export_packages (expires_at) WHERE deleted_at IS NULL;

-- +goose Down

DROP TABLE export_packages;
