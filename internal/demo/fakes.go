package demo

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors/creem/creemfake"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
)

// CreemAPIKey is the API key the demo's connectors file gives the Creem
// connector: a test that serves its own Creem fake (to count what reached
// it) creates the fake with this key.
const CreemAPIKey = creemKey

// SeedProviders does what `steward-demo peers` does to the fakes, on fakes
// the caller serves: every web person of the demo database gets a Stripe
// customer (card, charge, subscription) and a Creem customer (transaction,
// subscription), linked from app.users. It returns how many people it
// linked. The crash harness uses it to keep the fakes in its own process,
// where it can count the effects that reached them.
func SeedProviders(ctx context.Context, databaseURL string, sf *stripefake.Server, cf *creemfake.Server) (int, error) {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	return seedProviders(ctx, pool, sf, cf)
}
