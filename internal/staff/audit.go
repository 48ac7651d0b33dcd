package staff

import (
	"context"
	"encoding/hex"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/audit"
)

// Audit actions this package writes (target type "staff_account" unless
// noted). Details never hold a password, code, token, secret, email or IP
// address: an address appears as its keyed hash (ip_hash), an unknown
// sign-in email as a keyed hash in the target id.
//
//	staff.account_created   staff.account_disabled  staff.account_enabled
//	staff.role_changed      staff.password_changed  staff.mfa_reset
//	staff.unlocked          staff.locked            staff.signin_started
//	staff.signin_failed     staff.signed_in         staff.totp_enrolled
//	staff.passkey_enrolled  staff.passkey_clone_warning
//	staff.signed_out        staff.session_expired   staff.session_revoked (target staff_session)
//	staff.denied            (target console_action)
const (
	targetAccount = "staff_account"
	targetSession = "staff_session"
	// systemActor is the actor when nobody is known yet (an unknown
	// email, a bad single sign-on answer).
	systemActor = "system:staff"
)

func (s *Service) appendAudit(ctx context.Context, tx pgx.Tx, actor, action, accountID string, details map[string]any) error {
	r := audit.Record{Actor: actor, Action: action, TargetType: targetAccount, TargetID: accountID}
	if details != nil { // a nil map would marshal as null, not an object
		r.Details = details
	}
	return s.audit.Append(ctx, tx, r)
}

// unknownTarget names a sign-in attempt for an email with no account: a
// keyed hash links repeated attempts without keeping the address, which
// may be anyone's (a typo of a person's own address).
func (s *Service) unknownTarget(email string) string {
	return "email:" + hex.EncodeToString(s.keys.HashValue("staff sign-in email\x00"+email))
}

// actionRe is what a console action name may be in an audit entry (it
// comes from code, but a reason or path must never smuggle text in).
var actionRe = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,100}$`)

// Denied records a refused console action (a forged POST, a role's missing
// permission) in the audit log. A principal with no account id (a request
// with no session) is recorded as system:staff.
func (s *Service) Denied(ctx context.Context, p Principal, action, reason, ip string) error {
	actor := systemActor
	if p.AccountID != "" && canonicalID(p.AccountID) != "" {
		actor = p.Actor()
	}
	if !actionRe.MatchString(action) {
		action = "invalid"
	}
	if !actionRe.MatchString(reason) {
		// A reason is a short code ("csrf", "forbidden"); free text
		// could carry personal data into a log that cannot be erased.
		reason = "other"
	}
	d := map[string]any{"reason": reason, "role": p.Role}
	if p.SessionID != "" {
		d["session_id"] = p.SessionID
	}
	if ip != "" {
		d["ip_hash"] = s.ipHex(ip)
	}
	s.log.Warn("staff console action denied", "actor", actor, "action", action, "reason", reason)
	return s.audit.Record(ctx, s.pool, audit.Record{Actor: actor, Action: "staff.denied", TargetType: "console_action", TargetID: action, Details: d})
}
