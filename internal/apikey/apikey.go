// Package apikey manages API keys: random secrets shown once at creation,
// stored only as a SHA-256 hash, revocable. Authentication is a map lookup;
// revocation reaches every replica through LISTEN/NOTIFY.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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
}

// AuditFunc records a key event inside the same transaction as the change.
type AuditFunc func(ctx context.Context, tx pgx.Tx, action string, k Key) error

// Store creates, lists, revokes and authenticates keys.
type Store struct {
	pool  *pgxpool.Pool
	clock clock.Clock
	audit AuditFunc

	mu      sync.RWMutex
	cache   map[[32]byte]Key
	enabled bool
	gen     atomic.Uint64
}

// NewStore returns a key store; audit may be nil.
func NewStore(pool *pgxpool.Pool, clk clock.Clock, audit AuditFunc) *Store {
	return &Store{pool: pool, clock: clk, audit: audit, cache: map[[32]byte]Key{}}
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)

// Create makes a key and returns it with its secret, which is not stored and
// cannot be shown again.
func (s *Store) Create(ctx context.Context, name, role string, roles map[string]bool) (Key, string, error) {
	if !nameRe.MatchString(name) {
		return Key{}, "", apperr.Field("name", "1-64 characters: letters, digits, space, '.', '_' or '-'")
	}
	if !roles[role] {
		return Key{}, "", apperr.Field("role", "unknown role %q", role)
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
	k := Key{ID: "key_" + hex.EncodeToString(idb), Name: name, Role: role, Prefix: secret[:len(secretPrefix)+6], CreatedAt: s.clock.Now().UTC().Truncate(time.Microsecond)}
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (id, name, role, secret_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			k.ID, k.Name, k.Role, hash[:], k.Prefix, k.CreatedAt); err != nil {
			return fmt.Errorf("insert key: %w", err)
		}
		if s.audit != nil {
			return s.audit(ctx, tx, "key.created", k)
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
	rows, err := s.pool.Query(ctx, `SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		if err := rows.Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &k.RevokedAt); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Revoke revokes a key; every replica stops accepting it when the
// transaction commits.
func (s *Store) Revoke(ctx context.Context, id string) (Key, error) {
	var k Key
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1
			RETURNING id, name, role, prefix, created_at, revoked_at`, id, s.clock.Now().UTC()).
			Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &k.RevokedAt)
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
			return s.audit(ctx, tx, "key.revoked", k)
		}
		return nil
	})
	s.dropAll()
	return k, err
}

// ErrInvalid is returned for a missing, unknown or revoked key; the caller
// cannot tell which, on purpose.
var ErrInvalid = apperr.New(apperr.Unauthenticated, "missing, invalid or revoked API key; send Authorization: Bearer <key>")

// Authenticate returns the key for a secret.
func (s *Store) Authenticate(ctx context.Context, secret string) (Key, error) {
	if !strings.HasPrefix(secret, secretPrefix) || len(secret) > 128 {
		return Key{}, ErrInvalid
	}
	hash := sha256.Sum256([]byte(secret))
	s.mu.RLock()
	k, ok := s.cache[hash]
	s.mu.RUnlock()
	if ok {
		return k, nil
	}
	gen := s.gen.Load()
	err := s.pool.QueryRow(ctx, `SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys WHERE secret_hash = $1`, hash[:]).
		Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &k.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, ErrInvalid
	}
	if err != nil {
		return Key{}, fmt.Errorf("authenticate: %w", err)
	}
	if k.RevokedAt != nil {
		return Key{}, ErrInvalid
	}
	s.mu.Lock()
	if s.enabled && s.gen.Load() == gen {
		s.cache[hash] = k
	}
	s.mu.Unlock()
	return k, nil
}

func (s *Store) dropAll() {
	s.mu.Lock()
	s.gen.Add(1)
	clear(s.cache)
	s.mu.Unlock()
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
	s.mu.Unlock()
}
