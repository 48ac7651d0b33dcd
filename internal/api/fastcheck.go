package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apikey"
)

// checkConsentFused serves GET (and HEAD) /v1/consent/check, the call every
// page view and bot message of the products makes. It runs the very steps
// the middleware chain runs for every other /v1 route, in the same order
// and through the same functions (observe's begin and finish, guard,
// cors, the address and key rate limits, authentication, the handler),
// but called one after the other instead of through fiber's dispatch and
// request locals: at tens of thousands of checks a second that dispatch
// and the locals were a tenth of the request's cost (docs/performance.md).
//
// It is registered before the chain, so fiber runs it first and, as it
// never calls Next, nothing else. TestFusedCheckMatchesChain holds it to
// the chain's answers, headers, limits and log lines.
func (s *server) checkConsentFused(c *fiber.Ctx) (err error) {
	rid, start := s.begin(c)
	var k apikey.Key
	defer func() {
		s.finish(c, rid, start, k, recover(), err)
		err = nil
	}()
	if err := guardRequest(c); err != nil {
		return err
	}
	s.corsActual(c)
	// The address is charged as the chain charges it, but its headers are
	// set only if the answer is to carry them: a key that authenticates
	// replaces them with its own.
	addr, ad, limited := s.takeAddress(c)
	if limited && !ad.ok {
		return s.answerAddress(c, ad)
	}
	key, err := s.keyOf(c)
	if err != nil {
		if limited {
			s.addressHeaders(c, ad)
		}
		return err
	}
	k = key
	if err := s.chargeKey(c, k, addr, limited); err != nil {
		return err
	}
	return s.checkConsentAs(c, k)
}
