-- Restrictions of processing (GDPR Art. 18) that the application's own
-- schema cannot hold: a connector whose table has no flag column records the
-- restriction here, per system and dataset, under the keyed hash of each of
-- the person's identities (never the identity itself), so the application
-- (or staff) can ask Steward whether a person's processing is restricted.

-- +goose Up

CREATE TABLE processing_restrictions (
    system        text NOT NULL,
    dataset       text NOT NULL,
    lookup_hash   bytea NOT NULL,
    restricted_at timestamptz NOT NULL,
    PRIMARY KEY (system, dataset, lookup_hash)
);

CREATE INDEX processing_restrictions_hash ON processing_restrictions (lookup_hash);

-- +goose Down

DROP TABLE processing_restrictions;
