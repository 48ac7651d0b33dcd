package api

import (
	"math"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/clock"
)

// RateLimitConfig sets the API's rate limits: token buckets held in this
// replica's memory, one per client address and one per API key (see
// docs/operations.md, "Rate limits", for why not PostgreSQL or Redis).
//
// The address bucket is charged before authentication, for every request
// the limiter sees: the public endpoints (verification codes, status,
// downloads, webhooks, notices), unknown routes and failed authentications,
// so guessing keys is throttled. A request whose key authenticates is
// refunded to its address and charged to the key's bucket instead: a
// product's backend sending thousands of consent checks from one address
// is limited by its key, not its address. Health, readiness, metrics, the
// OpenAPI document, the SDK's assets and CORS preflights are not limited;
// the privacy center and console pages keep their own limiter.
type RateLimitConfig struct {
	// Window is the period the limits are counted over; a bucket holds a
	// whole window's allowance (the burst) and refills evenly across it.
	// Zero turns rate limiting off.
	Window time.Duration
	// PerAddress is the requests a client address may make per Window
	// without a valid key; 0: no limit.
	PerAddress int
	// PerRole is the requests a key of each role may make per Window; "*"
	// is the limit of roles not listed; a missing or 0 limit is none.
	PerRole map[string]int
	// Replicas divides every limit: each replica enforces its share,
	// rounded up. 1 (or 0) lets a client that is spread over N replicas by
	// the load balancer make up to N times the limit.
	Replicas int
	// MaxBuckets bounds the buckets held for each of addresses and keys;
	// when full, idle buckets are dropped and then an arbitrary one
	// (DefaultRateLimit: 100,000, a few MB).
	MaxBuckets int
}

// DefaultRateLimit is what `steward serve` uses unless configured
// otherwise (internal/config's STEWARD_RATE_LIMIT_* defaults).
func DefaultRateLimit() RateLimitConfig {
	return RateLimitConfig{
		Window:     time.Minute,
		PerAddress: 600,
		PerRole:    map[string]int{"sdk": 60000, "frontend": 120000, "*": 1200},
		Replicas:   1,
		MaxBuckets: 100000,
	}
}

// Header names from draft-ietf-httpapi-ratelimit-headers-10 (September
// 2025), in its structured-field form:
//
//	RateLimit-Policy: "address";q=600;w=60
//	RateLimit: "address";r=37;t=12
//
// q is the quota per w seconds, r the requests left, t the seconds until
// the quota is whole again. A refused request also carries Retry-After
// (RFC 9110): the seconds until the next request will be admitted.
const (
	headerRateLimit       = "RateLimit"
	headerRateLimitPolicy = "RateLimit-Policy"
	policyAddress         = "address"
	policyKey             = "key"
	localAddressBucket    = "rl_addr"
)

// rateLimits is the server's limiter state; nil when rate limiting is off.
type rateLimits struct {
	cfg       RateLimitConfig
	addresses *buckets[netip.Prefix]
	keys      *buckets[string]
}

func newRateLimits(cfg RateLimitConfig, clk clock.Clock) *rateLimits {
	if cfg.Window <= 0 {
		return nil
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	if cfg.MaxBuckets < 1 {
		cfg.MaxBuckets = DefaultRateLimit().MaxBuckets
	}
	return &rateLimits{cfg: cfg, addresses: newBuckets[netip.Prefix](cfg.Window, cfg.MaxBuckets, clk), keys: newBuckets[string](cfg.Window, cfg.MaxBuckets, clk)}
}

// share is this replica's part of limit n.
func (r *rateLimits) share(n int) int {
	if n <= 0 {
		return 0
	}
	return (n + r.cfg.Replicas - 1) / r.cfg.Replicas
}

func (r *rateLimits) forRole(role string) int {
	if n, ok := r.cfg.PerRole[role]; ok {
		return r.share(n)
	}
	return r.share(r.cfg.PerRole["*"])
}

// addressBucket is the bucket an address counts against: IPv4 addresses
// one by one, IPv6 addresses by /64, the smallest block a customer is
// usually given (so one host cannot rotate through its own addresses).
// Buckets are keyed by the prefix itself, not its text: the address of
// every request is looked up, and formatting it was an allocation each.
func addressBucket(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// limitAddress charges the client's address (behind the trusted proxies)
// one request, or refuses it with 429; limitKey refunds it once a key
// authenticates.
func (s *server) limitAddress(c *fiber.Ctx) error {
	id, d, limited := s.takeAddress(c)
	if limited {
		if err := s.answerAddress(c, d); err != nil {
			return err
		}
		c.Locals(localAddressBucket, id)
	}
	return c.Next()
}

// takeAddress takes one request from the client address's bucket, if
// addresses are limited, and returns the bucket and its answer.
func (s *server) takeAddress(c *fiber.Ctx) (id netip.Prefix, d decision, limited bool) {
	rl := s.limits
	if rl == nil {
		return id, d, false
	}
	n := rl.share(rl.cfg.PerAddress)
	if n == 0 {
		return id, d, false
	}
	id = addressBucket(s.clientAddr(c))
	return id, rl.addresses.take(id, n), true
}

// answerAddress sets the address's rate-limit headers from its bucket's
// answer d and refuses the request if d did.
func (s *server) answerAddress(c *fiber.Ctx, d decision) error {
	s.addressHeaders(c, d)
	if !d.ok {
		return tooManyRequests(c, d, "too many requests from this address")
	}
	return nil
}

// addressHeaders sets the address's rate-limit headers from its bucket's
// answer d.
func (s *server) addressHeaders(c *fiber.Ctx, d decision) {
	setRateHeaders(c, policyAddress, d, s.limits.cfg.Window)
}

// limitKey runs after authentication: the request is refunded to its
// address and charged to its key.
func (s *server) limitKey(c *fiber.Ctx) error {
	addr, charged := c.Locals(localAddressBucket).(netip.Prefix)
	if charged {
		c.Locals(localAddressBucket, nil)
	}
	if err := s.chargeKey(c, callerKey(c), addr, charged); err != nil {
		return err
	}
	return c.Next()
}

// chargeKey refunds the request to address bucket addr (if it was charged)
// and takes it from key k's bucket, or refuses it with 429.
func (s *server) chargeKey(c *fiber.Ctx, k apikey.Key, addr netip.Prefix, charged bool) error {
	rl := s.limits
	if rl == nil {
		return nil
	}
	if charged {
		rl.addresses.refund(addr, rl.share(rl.cfg.PerAddress))
	}
	n := rl.forRole(k.Role)
	if n == 0 {
		c.Response().Header.Del(headerRateLimit)
		c.Response().Header.Del(headerRateLimitPolicy)
		return nil
	}
	d := rl.keys.take(k.ID, n)
	setRateHeaders(c, policyKey, d, rl.cfg.Window)
	if !d.ok {
		return tooManyRequests(c, d, "too many requests with this API key")
	}
	return nil
}

// The header names normalised as fasthttp normalises them (Ratelimit,
// Ratelimit-Policy), for ResponseHeader.SetCanonical: the Del and Set of
// the same names elsewhere must find them.
var (
	hdrRateLimit       = fasthttp.AppendNormalizedHeaderKey(nil, headerRateLimit)
	hdrRateLimitPolicy = fasthttp.AppendNormalizedHeaderKey(nil, headerRateLimitPolicy)
)

func setRateHeaders(c *fiber.Ctx, policy string, d decision, window time.Duration) {
	// Appended into one stack buffer (fasthttp copies the values): every
	// rate-limited request sets these, keyed ones twice.
	var buf [64]byte
	b := append(buf[:0], '"')
	b = append(b, policy...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, int64(d.limit), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, int64(ceilSeconds(window)), 10)
	h := &c.Response().Header
	h.SetCanonical(hdrRateLimitPolicy, b)
	b = append(buf[:0], '"')
	b = append(b, policy...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, int64(d.remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, int64(ceilSeconds(d.reset)), 10)
	h.SetCanonical(hdrRateLimit, b)
}

func tooManyRequests(c *fiber.Ctx, d decision, msg string) error {
	retry := ceilSeconds(d.retryAfter)
	if retry < 1 {
		retry = 1
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retry))
	return apperr.New(apperr.RateLimited, "%s; retry after %d s", msg, retry)
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// decision is one bucket's answer.
type decision struct {
	ok         bool
	limit      int
	remaining  int
	reset      time.Duration // until the bucket is full again
	retryAfter time.Duration // until one token is there, when refused
}

// bucket is a token bucket of capacity n refilled at n per window, kept as
// one number so that taking a token is a compare-and-swap instead of a
// lock: full is the time (Unix nanoseconds) at which the bucket will be
// full again (GCRA's theoretical arrival time). At time now the bucket
// holds n - (full-now)/interval tokens, interval being window/n; a full
// bucket has full <= now. Every consent check passes through two of these
// (the address, then the key), so under load a mutex here was the busiest
// lock of the process.
type bucket struct {
	full atomic.Int64
}

// buckets is a bounded set of token buckets. A bucket left alone for a
// window is full, the same as none, so idle buckets are swept once per
// window; when the set is full regardless (an attacker rotating addresses),
// an arbitrary bucket is dropped for the new one, which at worst hands the
// dropped client a fresh allowance. Memory stays at MaxBuckets. The map is
// read under a read lock; only a new bucket or a sweep takes the write lock.
type buckets[K comparable] struct {
	mu        sync.RWMutex
	clk       clock.Clock
	window    time.Duration
	max       int
	m         map[K]*bucket
	lastSweep atomic.Int64 // Unix nanoseconds
}

func newBuckets[K comparable](window time.Duration, max int, clk clock.Clock) *buckets[K] {
	bs := &buckets[K]{clk: clk, window: window, max: max, m: map[K]*bucket{}}
	bs.lastSweep.Store(clk.Now().UnixNano())
	return bs
}

// interval is the time one of n tokens takes to come back; capacity is the
// time a whole bucket takes (the window, up to rounding).
func (bs *buckets[K]) interval(n int) (interval, capacity int64) {
	interval = max(int64(bs.window)/int64(n), 1)
	return interval, interval * int64(n)
}

// take removes one token from id's bucket of capacity n, if it has one.
func (bs *buckets[K]) take(id K, n int) decision {
	now := bs.clk.Now().UnixNano()
	if now-bs.lastSweep.Load() >= int64(bs.window) {
		bs.mu.Lock()
		if now-bs.lastSweep.Load() >= int64(bs.window) {
			bs.sweep(now)
		}
		bs.mu.Unlock()
	}
	bs.mu.RLock()
	b := bs.m[id]
	bs.mu.RUnlock()
	if b == nil {
		b = bs.add(id, now)
	}
	interval, capacity := bs.interval(n)
	d := decision{limit: n}
	for {
		full := b.full.Load()
		next := max(full, now) + interval
		if next-now > capacity {
			// Refused: one token is back when full-now <= capacity-interval.
			d.retryAfter = time.Duration(full - now - capacity + interval)
			d.remaining = int(max(capacity-(full-now), 0) / interval)
			d.reset = time.Duration(max(full-now, 0))
			return d
		}
		if b.full.CompareAndSwap(full, next) {
			d.ok = true
			d.remaining = int((capacity - (next - now)) / interval)
			d.reset = time.Duration(next - now)
			return d
		}
	}
}

// add returns id's bucket, creating it (full) if there is none.
func (bs *buckets[K]) add(id K, now int64) *bucket {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b := bs.m[id]; b != nil {
		return b
	}
	if len(bs.m) >= bs.max {
		// Sweeping is O(buckets): at most 16 times a window.
		if now-bs.lastSweep.Load() >= int64(bs.window)/16 {
			bs.sweep(now)
		}
		for victim := range bs.m {
			if len(bs.m) < bs.max {
				break
			}
			delete(bs.m, victim)
		}
	}
	b := &bucket{}
	b.full.Store(now)
	bs.m[id] = b
	return b
}

// refund gives id's bucket of capacity n back the token a request took.
func (bs *buckets[K]) refund(id K, n int) {
	bs.mu.RLock()
	b := bs.m[id]
	bs.mu.RUnlock()
	if b == nil {
		return
	}
	interval, _ := bs.interval(n)
	b.full.Add(-interval) // below now is simply full
}

// sweep drops the buckets that have refilled; bs.mu is held for writing.
func (bs *buckets[K]) sweep(now int64) {
	bs.lastSweep.Store(now)
	for id, b := range bs.m {
		if b.full.Load() <= now {
			delete(bs.m, id)
		}
	}
}

func (bs *buckets[K]) len() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return len(bs.m)
}
