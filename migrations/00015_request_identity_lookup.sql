-- The staff console finds requests by one of the person's identities
-- (dsar.Filter.Identity): through its keyed hash, so the lookup needs the
-- hash alone indexed (the primary key leads with the request id).

-- +goose Up

CREATE INDEX privacy_request_identities_lookup ON privacy_request_identities (lookup_hash);

-- +goose Down

DROP INDEX privacy_request_identities_lookup;
