-- API keys record when they were last used (written at most once a minute
-- per key and replica, batched off the request path) and may expire.
-- Privacy requests name the product they were made for, so staff can filter
-- the queue by it; requests made before this migration have none.

-- +goose Up
ALTER TABLE api_keys
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN expires_at   timestamptz;

ALTER TABLE privacy_requests ADD COLUMN product text;
CREATE INDEX privacy_requests_product_due ON privacy_requests (product, due_at, id) WHERE product IS NOT NULL;

-- +goose Down
DROP INDEX privacy_requests_product_due;
ALTER TABLE privacy_requests DROP COLUMN product;
ALTER TABLE api_keys
    DROP COLUMN last_used_at,
    DROP COLUMN expires_at;
