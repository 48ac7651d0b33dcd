package staff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/db"
)

// Sessions live in PostgreSQL, keyed by the SHA-256 of their token, so any
// replica authenticates them and a revocation is immediate everywhere.
// Authenticate checks both deadlines against the injected clock at every
// request: idle (no request for IdleTimeout since the last recorded one)
// and absolute (AbsoluteTimeout after sign-in, however active). The last
// request is recorded at most once per TouchEvery, which keeps a busy
// console from writing on every page view.

// Authenticate returns the session's principal and extends its idle
// deadline; ErrNoSession when unknown, revoked or expired. A disabled
// account's sessions are refused; a locked one's are not: a lock is what
// someone guessing at the account causes, and must not sign its owner out.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	if !wellFormed(token, sessionPrefix) {
		return Principal{}, ErrNoSession
	}
	now := s.now()
	var p Principal
	var lastSeen, absolute time.Time
	var disabled bool
	err := s.pool.QueryRow(ctx, `SELECT s.id::text, s.method, s.last_seen, s.absolute_expires, a.id::text, a.email, a.name, a.role, a.disabled
		FROM staff_sessions s JOIN staff_accounts a ON a.id = s.account_id WHERE s.token_hash = $1`, tokenHash(token)).
		Scan(&p.SessionID, &p.Method, &lastSeen, &absolute, &p.AccountID, &p.Email, &p.Name, &p.Role, &disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate staff session: %w", err)
	}
	reason := ""
	switch {
	case disabled:
		reason = "account_disabled"
	case !now.Before(absolute):
		reason = "absolute_timeout"
	case !now.Before(lastSeen.Add(s.cfg.IdleTimeout)):
		reason = "idle_timeout"
	}
	if reason != "" {
		if err := s.expire(ctx, p, reason); err != nil {
			return Principal{}, err
		}
		return Principal{}, ErrNoSession
	}
	if now.Sub(lastSeen) >= s.cfg.TouchEvery {
		// GREATEST: two replicas touching at once never move it back.
		if _, err := s.pool.Exec(ctx, `UPDATE staff_sessions SET last_seen = GREATEST(last_seen, $2) WHERE id = $1`, p.SessionID, now); err != nil {
			return Principal{}, fmt.Errorf("touch staff session: %w", err)
		}
	}
	return p, nil
}

// expire removes a session past a deadline and records why: the audit log
// then says when every session ended.
func (s *Service) expire(ctx context.Context, p Principal, reason string) error {
	return db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE id = $1`, p.SessionID)
		if err != nil {
			return fmt.Errorf("expire staff session: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // another replica got there first
		}
		s.log.Info("staff session expired", "account", p.AccountID, "session", p.SessionID, "reason", reason)
		return s.audit.Append(ctx, tx, audit.Record{Actor: systemActor, Action: "staff.session_expired", TargetType: targetSession,
			TargetID: p.SessionID, Details: map[string]any{"account_id": p.AccountID, "reason": reason}})
	})
}

// SignOut ends the session. An unknown or already ended session is not an
// error: the browser's cookie goes either way.
func (s *Service) SignOut(ctx context.Context, token string) error {
	if !wellFormed(token, sessionPrefix) {
		return nil
	}
	return db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		var id, account string
		err := tx.QueryRow(ctx, `DELETE FROM staff_sessions WHERE token_hash = $1 RETURNING id::text, account_id::text`, tokenHash(token)).Scan(&id, &account)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sign out: %w", err)
		}
		return s.audit.Append(ctx, tx, audit.Record{Actor: "staff:" + account, Action: "staff.signed_out", TargetType: targetSession,
			TargetID: id, Details: map[string]any{"account_id": account}})
	})
}

// Sessions lists an account's live sessions, newest first.
func (s *Service) Sessions(ctx context.Context, accountID string) ([]SessionInfo, error) {
	if accountID = canonicalID(accountID); accountID == "" {
		return []SessionInfo{}, nil
	}
	now := s.now()
	rows, err := s.pool.Query(ctx, `SELECT id::text, account_id::text, method, created_at, last_seen, ip_hash FROM staff_sessions
		WHERE account_id = $1 AND absolute_expires > $2 AND last_seen > $3 ORDER BY created_at DESC, id`,
		accountID, now, now.Add(-s.cfg.IdleTimeout))
	if err != nil {
		return nil, fmt.Errorf("list staff sessions: %w", err)
	}
	defer rows.Close()
	out := []SessionInfo{}
	for rows.Next() {
		var si SessionInfo
		if err := rows.Scan(&si.ID, &si.AccountID, &si.Method, &si.CreatedAt, &si.LastSeen, &si.IPHash); err != nil {
			return nil, fmt.Errorf("list staff sessions: %w", err)
		}
		si.CreatedAt, si.LastSeen = si.CreatedAt.UTC(), si.LastSeen.UTC()
		out = append(out, si)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list staff sessions: %w", err)
	}
	return out, nil
}

// RevokeSession ends a session by its public id. actor is who does it
// (the person themselves, an admin, "system:cli"); whether they may is
// the console's authorization decision.
func (s *Service) RevokeSession(ctx context.Context, sessionID, actor string) error {
	if sessionID = canonicalID(sessionID); sessionID == "" {
		return ErrNoSession
	}
	return db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		var account string
		err := tx.QueryRow(ctx, `DELETE FROM staff_sessions WHERE id = $1 RETURNING account_id::text`, sessionID).Scan(&account)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoSession
		}
		if err != nil {
			return fmt.Errorf("revoke staff session: %w", err)
		}
		return s.audit.Append(ctx, tx, audit.Record{Actor: actor, Action: "staff.session_revoked", TargetType: targetSession,
			TargetID: sessionID, Details: map[string]any{"account_id": account}})
	})
}

// PurgeExpired deletes sessions, pending sign-ins and single sign-on
// states past their deadlines (Authenticate refuses them anyway; this
// keeps the tables small), recording each session's end like Authenticate
// does. It is scheduled work a scheduler triggers (leader.Task's Run); it
// returns how many rows went.
func (s *Service) PurgeExpired(ctx context.Context) (int, error) {
	now := s.now()
	total := 0
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM staff_sessions WHERE absolute_expires <= $1 OR last_seen <= $2
			RETURNING id::text, account_id::text, absolute_expires <= $1`, now, now.Add(-s.cfg.IdleTimeout))
		if err != nil {
			return fmt.Errorf("purge staff sessions: %w", err)
		}
		type gone struct {
			id, account string
			absolute    bool
		}
		var ended []gone
		for rows.Next() {
			var g gone
			if err := rows.Scan(&g.id, &g.account, &g.absolute); err != nil {
				rows.Close()
				return fmt.Errorf("purge staff sessions: %w", err)
			}
			ended = append(ended, g)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("purge staff sessions: %w", err)
		}
		for _, g := range ended {
			reason := "idle_timeout"
			if g.absolute {
				reason = "absolute_timeout"
			}
			if err := s.audit.Append(ctx, tx, audit.Record{Actor: systemActor, Action: "staff.session_expired", TargetType: targetSession,
				TargetID: g.id, Details: map[string]any{"account_id": g.account, "reason": reason}}); err != nil {
				return err
			}
		}
		total += len(ended)
		for _, sql := range []string{`DELETE FROM staff_pending WHERE expires_at <= $1`, `DELETE FROM staff_oidc_states WHERE expires_at <= $1`} {
			tag, err := tx.Exec(ctx, sql, now)
			if err != nil {
				return fmt.Errorf("purge expired staff sign-ins: %w", err)
			}
			total += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}
