// Package apikey manages API keys: random secrets shown once at creation,
// stored only as a SHA-256 hash, revocable, optionally expiring.
// Authentication is a map lookup; revocation reaches every replica through
// LISTEN/NOTIFY. An unknown secret is remembered for NegativeTTL, so a
// bogus key sent again costs no database lookup. A key's last use is recorded at most once per TouchEvery,
// batched by Flush, never written on the request path.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db"
)

// NotifyChannel carries revocations (payload: the key id).
const NotifyChannel = "steward_keys"

// secretPrefix makes leaked keys easy to spot in code and logs (and lets
// secret scanners match them).
const secretPrefix = "stw_"

// Key is an API key's public record.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// ExpiresAt, when set, is when the key stops authenticating.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LastUsedAt is the last recorded use, to within TouchEvery.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Expired reports whether the key has expired at now.
func (k Key) Expired(now time.Time) bool { return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) }

// CreateInput is a new key.
type CreateInput struct {
	Name string
	Role string
	// ExpiresAt is optional; it must be in the future.
	ExpiresAt *time.Time
}

// AuditFunc records a key event by actor inside the same transaction as
// the change.
type AuditFunc func(ctx context.Context, tx pgx.Tx, actor, action string, k Key) error

// TouchEvery is how often, at most, a key's last use is written.
const TouchEvery = time.Minute

const keyColumns = `id, name, role, prefix, created_at, revoked_at, expires_at, last_used_at`

func scanKey(row pgx.Row, k *Key) error {
	return row.Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &k.RevokedAt, &k.ExpiresAt, &k.LastUsedAt)
}

// Store creates, lists, revokes and authenticates keys.
type Store struct {
	pool  *pgxpool.Pool
	clock clock.Clock
	audit AuditFunc

	mu      sync.RWMutex
	cache   map[[32]byte]Key
	enabled bool
	gen     atomic.Uint64
	// recent maps a cheap keyed hash of a secret that authenticated to the
	// secret and its SHA-256, so that a frequent caller skips hashing its
	// secret with SHA-256 on every request (the consent check's largest
	// single cost after the socket). It holds only secrets that matched a
	// key, at most recentMax of them, is cleared with the cache, and an
	// entry counts only after a constant-time comparison of the whole
	// secret. The process already holds every secret it is sent, and its
	// database and keyring credentials; the database keeps only hashes.
	recent     map[uint64]recentSecret
	recentSeed maphash.Seed

	// touched is when each key's use was last queued for writing; pending
	// holds the uses Flush has yet to write.
	touchMu sync.RWMutex
	touched map[string]time.Time
	pending map[string]time.Time

	// unknown remembers, until the time held, the hashes of secrets that
	// matched no usable key (at most NegativeMax of them).
	negMu   sync.Mutex
	unknown map[[32]byte]time.Time
	// lookups counts the database lookups Authenticate made (tests).
	lookups atomic.Int64
}

// NegativeTTL is how long a secret that matched no usable key is refused
// without asking the database again, and NegativeMax how many such
// secrets are remembered (about 2 MB at most).
//
// A remembered secret cannot become valid within the TTL: secrets are 256
// random bits, so no key created later has one (Create forgets its own
// hash regardless); a revoked key stays revoked and an expired one
// expired, so remembering their secrets as unknown is simply right. What
// the cache must never do is outlive a revocation in the other direction,
// and it cannot: it only ever holds refusals. Database errors are not
// remembered.
const (
	NegativeTTL = time.Minute
	NegativeMax = 20000
)

// NewStore returns a key store; audit may be nil.
func NewStore(pool *pgxpool.Pool, clk clock.Clock, audit AuditFunc) *Store {
	return &Store{pool: pool, clock: clk, audit: audit, cache: map[[32]byte]Key{}, recent: map[uint64]recentSecret{}, recentSeed: maphash.MakeSeed(), touched: map[string]time.Time{}, pending: map[string]time.Time{}, unknown: map[[32]byte]time.Time{}}
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)

// IDPattern matches a key id.
var IDPattern = regexp.MustCompile(`^key_[0-9a-f]{12}$`)

// Create makes a key for actor (key:<id>, staff:<uuid>, system:cli) and
// returns it with its secret, which is not stored and cannot be shown again.
func (s *Store) Create(ctx context.Context, in CreateInput, roles map[string]bool, actor string) (Key, string, error) {
	name, role := in.Name, in.Role
	if !nameRe.MatchString(name) {
		return Key{}, "", apperr.Field("name", "1-64 characters: letters, digits, space, '.', '_' or '-'")
	}
	if !roles[role] {
		return Key{}, "", apperr.Field("role", "unknown role %q", role)
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	var expires *time.Time
	if in.ExpiresAt != nil {
		e := in.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !e.After(now) {
			return Key{}, "", apperr.Field("expires_at", "must be in the future")
		}
		expires = &e
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Key{}, "", fmt.Errorf("generate key: %w", err)
	}
	idb := make([]byte, 6)
	if _, err := rand.Read(idb); err != nil {
		return Key{}, "", fmt.Errorf("generate key id: %w", err)
	}
	secret := secretPrefix + base64.RawURLEncoding.EncodeToString(raw)
	hash := sha256.Sum256([]byte(secret))
	s.forgetUnknown(hash)
	k := Key{ID: "key_" + hex.EncodeToString(idb), Name: name, Role: role, Prefix: secret[:len(secretPrefix)+6], CreatedAt: now, ExpiresAt: expires}
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (id, name, role, secret_hash, prefix, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Name, k.Role, hash[:], k.Prefix, k.CreatedAt, k.ExpiresAt); err != nil {
			return fmt.Errorf("insert key: %w", err)
		}
		if s.audit != nil {
			return s.audit(ctx, tx, actor, "key.created", k)
		}
		return nil
	})
	if err != nil {
		return Key{}, "", err
	}
	return k, secret, nil
}

// List returns every key, newest first.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		if err := scanKey(rows, &k); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Revoke revokes a key for actor; every replica stops accepting it when
// the transaction commits.
func (s *Store) Revoke(ctx context.Context, id, actor string) (Key, error) {
	var k Key
	if !IDPattern.MatchString(id) {
		return k, apperr.New(apperr.NotFound, "no API key with id %q", id)
	}
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		err := scanKey(tx.QueryRow(ctx, `
			UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1
			RETURNING `+keyColumns, id, s.clock.Now().UTC()), &k)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "no API key with id %q", id)
		}
		if err != nil {
			return fmt.Errorf("revoke key: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, k.ID); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		if s.audit != nil {
			return s.audit(ctx, tx, actor, "key.revoked", k)
		}
		return nil
	})
	s.dropAll()
	return k, err
}

// ErrInvalid is returned for a missing, unknown, revoked or expired key;
// the caller cannot tell which, on purpose.
var ErrInvalid = apperr.New(apperr.Unauthenticated, "missing, invalid, revoked or expired API key; send Authorization: Bearer <key>")

// recentSecret is an entry of Store.recent.
type recentSecret struct {
	secret string
	hash   [32]byte
}

// recentMax bounds Store.recent: keys in use at once are far fewer.
const recentMax = 4096

// Authenticate returns the key for a secret.
func (s *Store) Authenticate(ctx context.Context, secret string) (Key, error) {
	if !strings.HasPrefix(secret, secretPrefix) || len(secret) > 128 {
		return Key{}, ErrInvalid
	}
	now := s.clock.Now()
	short := maphash.String(s.recentSeed, secret)
	s.mu.RLock()
	r, known := s.recent[short]
	var hash [32]byte
	var k Key
	var ok bool
	if known && constantTimeEqual(r.secret, secret) {
		hash = r.hash
		k, ok = s.cache[hash]
	}
	s.mu.RUnlock()
	if !ok {
		hash = sha256.Sum256([]byte(secret))
		s.mu.RLock()
		k, ok = s.cache[hash]
		s.mu.RUnlock()
		if ok {
			s.rememberRecent(short, secret, hash)
		}
	}
	if ok {
		// A cached key still expires on time: the cache holds the
		// expiry, not a verdict.
		if k.Expired(now) {
			return Key{}, ErrInvalid
		}
		s.used(k.ID, now)
		return k, nil
	}
	return s.lookup(ctx, secret, short, hash, now)
}

// lookup is Authenticate for a secret the cache does not hold: the negative
// cache, then the database. Its own function, so that the variables the
// query needs on the heap are allocated only when it runs.
func (s *Store) lookup(ctx context.Context, secret string, short uint64, hash [32]byte, now time.Time) (Key, error) {
	if s.knownUnknown(hash, now) {
		return Key{}, ErrInvalid
	}
	gen := s.gen.Load()
	s.lookups.Add(1)
	var k Key
	err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE secret_hash = $1`, hash[:]), &k)
	if errors.Is(err, pgx.ErrNoRows) {
		s.rememberUnknown(hash, now)
		return Key{}, ErrInvalid
	}
	if err != nil {
		return Key{}, fmt.Errorf("authenticate: %w", err)
	}
	if k.RevokedAt != nil || k.Expired(now) {
		s.rememberUnknown(hash, now)
		return Key{}, ErrInvalid
	}
	k.LastUsedAt = nil // changes under the cache; List reads it fresh
	s.mu.Lock()
	if s.enabled && s.gen.Load() == gen {
		s.cache[hash] = k
	}
	s.mu.Unlock()
	s.rememberRecent(short, secret, hash)
	s.used(k.ID, now)
	return k, nil
}

// knownUnknown reports whether hash was refused within NegativeTTL.
func (s *Store) knownUnknown(hash [32]byte, now time.Time) bool {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	until, ok := s.unknown[hash]
	if ok && !now.Before(until) {
		delete(s.unknown, hash)
		return false
	}
	return ok
}

// rememberUnknown refuses hash without a lookup for NegativeTTL. When the
// set is full, expired entries go first, then arbitrary ones: an attacker
// sending ever new secrets costs a lookup each (and their address's rate
// limit), never unbounded memory.
func (s *Store) rememberUnknown(hash [32]byte, now time.Time) {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if len(s.unknown) >= NegativeMax {
		for h, until := range s.unknown {
			if !now.Before(until) {
				delete(s.unknown, h)
			}
		}
		for h := range s.unknown {
			if len(s.unknown) < NegativeMax {
				break
			}
			delete(s.unknown, h)
		}
	}
	s.unknown[hash] = now.Add(NegativeTTL)
}

func (s *Store) forgetUnknown(hash [32]byte) {
	s.negMu.Lock()
	delete(s.unknown, hash)
	s.negMu.Unlock()
}

// used queues a key's use for Flush, at most once per TouchEvery.
func (s *Store) used(id string, now time.Time) {
	// Nearly every call finds the use queued less than TouchEvery ago: a
	// read lock answers that without making concurrent requests queue.
	s.touchMu.RLock()
	last, ok := s.touched[id]
	s.touchMu.RUnlock()
	if ok && now.Sub(last) < TouchEvery {
		return
	}
	s.touchMu.Lock()
	if last, ok := s.touched[id]; !ok || now.Sub(last) >= TouchEvery {
		s.touched[id] = now
		s.pending[id] = now
	}
	s.touchMu.Unlock()
}

// Flush writes the queued last uses in one statement. A write never moves
// a key's last use backwards (another replica may have written a later one).
func (s *Store) Flush(ctx context.Context) error {
	s.touchMu.Lock()
	if len(s.pending) == 0 {
		s.touchMu.Unlock()
		return nil
	}
	ids := make([]string, 0, len(s.pending))
	ats := make([]time.Time, 0, len(s.pending))
	for id, at := range s.pending {
		ids = append(ids, id)
		ats = append(ats, at.UTC())
	}
	clear(s.pending)
	s.touchMu.Unlock()
	_, err := s.pool.Exec(ctx, `
		UPDATE api_keys k SET last_used_at = u.at
		FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
		WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`, ids, ats)
	if err != nil {
		// Put them back for the next flush unless newer uses came in.
		s.touchMu.Lock()
		for i, id := range ids {
			if _, ok := s.pending[id]; !ok {
				s.pending[id] = ats[i]
			}
		}
		s.touchMu.Unlock()
		return fmt.Errorf("record key use: %w", err)
	}
	return nil
}

// Run flushes the queued last uses every interval (TouchEvery when zero)
// until ctx ends, then once more.
func (s *Store) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = TouchEvery
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.Flush(fctx); err != nil {
				log.Warn("recording API key use failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := s.Flush(ctx); err != nil {
				log.Warn("recording API key use failed", "err", err)
			}
		}
	}
}

func (s *Store) dropAll() {
	s.mu.Lock()
	s.gen.Add(1)
	clear(s.cache)
	clear(s.recent)
	s.mu.Unlock()
}

// rememberRecent files a secret whose hash is in the cache under its short
// hash (Store.recent). Only a cached key's secret is kept: one the cache
// was not allowed to keep is hashed again next time.
func (s *Store) rememberRecent(short uint64, secret string, hash [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, cached := s.cache[hash]; !cached {
		return
	}
	if len(s.recent) >= recentMax {
		clear(s.recent)
	}
	s.recent[short] = recentSecret{secret: strings.Clone(secret), hash: hash}
}

// constantTimeEqual compares two secrets in time that depends on their
// length only, as crypto/subtle.ConstantTimeCompare does for byte slices;
// converting the strings to call it would allocate on every request.
func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// Notify handles a revocation notice from any replica. Keys are few, so
// dropping the whole cache is simpler than indexing it by id.
func (s *Store) Notify(string) { s.dropAll() }

// Connected enables the cache only while revocations can be heard.
func (s *Store) Connected(up bool) {
	s.mu.Lock()
	s.gen.Add(1)
	s.enabled = up
	clear(s.cache)
	clear(s.recent)
	s.mu.Unlock()
}
