package audit

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/apperr"
)

// Filter selects sealed entries.
type Filter struct {
	Action     string // exact, or a prefix ending in ".*" (e.g. "consent.*")
	TargetType string
	TargetID   string
	Actor      string
	Since      *time.Time // inclusive
	Until      *time.Time // exclusive
	Cursor     string     // from a previous page
	Limit      int        // 0 = no limit (export)
	Desc       bool       // newest first
}

// ParseTime reads an RFC 3339 time for a filter, naming the parameter.
func ParseTime(field, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, apperr.Field(field, "must be an RFC 3339 time such as 2026-01-31T00:00:00Z")
	}
	return &t, nil
}

// Validate checks the filter and returns a clear error for bad input.
func (f *Filter) Validate() error {
	if f.Action != "" && !actionRe.MatchString(strings.TrimSuffix(f.Action, ".*")+".x") {
		return apperr.Field("action", "must be a dotted action name, or a prefix ending in .* (e.g. consent.*)")
	}
	if f.Since != nil && f.Until != nil && !f.Since.Before(*f.Until) {
		return apperr.Field("until", "must be after since")
	}
	for name, v := range map[string]string{"target_type": f.TargetType, "target_id": f.TargetID, "actor": f.Actor} {
		if len(v) > 200 {
			return apperr.Field(name, "longer than 200 characters")
		}
	}
	if _, err := f.cursorSeq(); err != nil {
		return err
	}
	return nil
}

func (f *Filter) cursorSeq() (int64, error) {
	if f.Cursor == "" {
		return 0, nil
	}
	bad := apperr.Field("cursor", "not a cursor returned by this API; start again without one")
	b, err := base64.RawURLEncoding.DecodeString(f.Cursor)
	if err != nil || len(b) < 3 || len(f.Cursor) > 64 {
		return 0, bad
	}
	dir, num, _ := strings.Cut(string(b), ":")
	if (dir == "d") != f.Desc || (dir != "a" && dir != "d") {
		return 0, apperr.Field("cursor", "was made for the other order")
	}
	seq, err := strconv.ParseInt(num, 10, 64)
	if err != nil || seq <= 0 {
		return 0, bad
	}
	return seq, nil
}

// CursorAfter is the cursor for the page after entry seq.
func (f *Filter) CursorAfter(seq int64) string {
	dir := "a"
	if f.Desc {
		dir = "d"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(dir + ":" + strconv.FormatInt(seq, 10)))
}

func (f *Filter) sql() (string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if p, ok := strings.CutSuffix(f.Action, ".*"); ok {
		add("action LIKE $%d", p+".%")
	} else if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if f.TargetType != "" {
		add("target_type = $%d", f.TargetType)
	}
	if f.TargetID != "" {
		add("target_id = $%d", f.TargetID)
	}
	if f.Actor != "" {
		add("actor = $%d", f.Actor)
	}
	if f.Since != nil {
		add("at >= $%d", *f.Since)
	}
	if f.Until != nil {
		add("at < $%d", *f.Until)
	}
	seq, err := f.cursorSeq()
	if err != nil {
		return "", nil, err
	}
	order := "ASC"
	if seq > 0 {
		if f.Desc {
			add("seq < $%d", seq)
		} else {
			add("seq > $%d", seq)
		}
	}
	if f.Desc {
		order = "DESC"
	}
	q := `SELECT seq, at, actor, action, target_type, target_id, details::text, policy_revision, prev_hash, hash FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq " + order
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	return q, args, nil
}

// Each streams the entries matching f to fn, never holding them all.
func Each(ctx context.Context, pool *pgxpool.Pool, f Filter, fn func(Entry) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	q, args, err := f.sql()
	if err != nil {
		return err
	}
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("audit query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		var det string
		var prev, hash []byte
		if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &det, &e.PolicyRevision, &prev, &hash); err != nil {
			return fmt.Errorf("audit query: %w", err)
		}
		e.At = e.At.UTC()
		e.Details, e.PrevHash, e.Hash = []byte(det), prev, hash
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit query: %w", err)
	}
	return nil
}

// List returns one page and the cursor for the next ("" at the end).
func List(ctx context.Context, pool *pgxpool.Pool, f Filter) ([]Entry, string, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		return nil, "", apperr.Field("limit", "must be between 1 and 1000")
	}
	want := f.Limit
	f.Limit++
	out := make([]Entry, 0, want)
	err := Each(ctx, pool, f, func(e Entry) error { out = append(out, e); return nil })
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > want {
		out = out[:want]
		next = f.CursorAfter(out[want-1].Seq)
	}
	return out, next, nil
}

// Reader bundles what the API needs to read and verify the log.
type Reader struct {
	Pool *pgxpool.Pool
	Keys Keys
}

// Checkpoints returns the newest checkpoints, newest first (at most limit,
// 1–200).
func (r Reader) Checkpoints(ctx context.Context, limit int) ([]Checkpoint, error) {
	limit = min(max(limit, 1), 200)
	rows, err := r.Pool.Query(ctx, `SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: list checkpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Checkpoint, error) {
		var c Checkpoint
		var hash []byte
		err := row.Scan(&c.Seq, &hash, &c.At, &c.KeyID, &c.Signature)
		c.Hash = hash
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: list checkpoints: %w", err)
	}
	return out, nil
}

// List returns one page of entries.
func (r Reader) List(ctx context.Context, f Filter) ([]Entry, string, error) {
	return List(ctx, r.Pool, f)
}

// Each streams entries.
func (r Reader) Each(ctx context.Context, f Filter, fn func(Entry) error) error {
	return Each(ctx, r.Pool, f, fn)
}

// Verify verifies the whole chain.
func (r Reader) Verify(ctx context.Context) (Result, error) { return Verify(ctx, r.Pool, r.Keys, nil) }
