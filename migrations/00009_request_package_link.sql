-- The download link of a request's package, sealed by the keyring: the
-- person holding the request's status token reads it from the status
-- endpoint (a Telegram user has no email to receive it by). Sealed, so a
-- copy of the table alone cannot download anything.

-- +goose Up

ALTER TABLE privacy_requests
    ADD COLUMN package_link_kid text,
    ADD COLUMN package_link     bytea,
    ADD COLUMN package_expires  timestamptz;

-- +goose Down

ALTER TABLE privacy_requests
    DROP COLUMN package_link_kid,
    DROP COLUMN package_link,
    DROP COLUMN package_expires;
