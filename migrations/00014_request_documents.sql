-- Documents a person or their agent uploaded with a request: today the
-- authorized agent's signed authorization. The content and its
-- description (file name, media type: personal data) are sealed under the
-- master keyring with the request id and kind as associated data; the
-- size and SHA-256 are kept in the clear so staff can see a document is
-- there and cite its hash without opening it. Retention clears the row
-- with the request's other personal data.

-- +goose Up

CREATE TABLE privacy_request_documents (
    request_id  uuid NOT NULL REFERENCES privacy_requests (id),
    kind        text NOT NULL CHECK (kind IN ('agent_authorization')),
    kid         text NOT NULL,
    content     bytea NOT NULL,
    meta        bytea NOT NULL,
    size        integer NOT NULL CHECK (size > 0),
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (request_id, kind)
);

-- +goose Down

DROP TABLE privacy_request_documents;
