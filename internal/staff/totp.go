package staff

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 6238 TOTP is HMAC-SHA1 in every authenticator app; it is not used as a hash here
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP is RFC 6238 with the parameters every authenticator app supports:
// HMAC-SHA1, 6 digits, 30-second steps. A code is accepted for the current
// step or one step either side (clock drift, a code typed as it turned
// over), and only for a step later than the last one accepted for the
// account, so an overheard or reused code is refused.
const (
	totpStep   = 30
	totpDigits = 6
	totpSkew   = 1
)

// hotp is RFC 4226's HOTP value of counter as a zero-padded decimal.
func hotp(key []byte, counter uint64, digits int) string {
	mac := hmac.New(sha1.New, key)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// totpAt is the code for time t.
func totpAt(key []byte, t time.Time) string {
	return hotp(key, uint64(t.Unix()/totpStep), totpDigits)
}

// normalizeCode drops the spaces and dashes people type in a code.
func normalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\u00a0' {
			return -1
		}
		return r
	}, code)
}

// matchTOTP returns the step code is valid for at now (within the skew),
// or -1. Every candidate step is computed and compared in constant time,
// so the answer's timing does not say which step matched.
func matchTOTP(key []byte, code string, now time.Time) int64 {
	code = normalizeCode(code)
	if len(code) != totpDigits {
		return -1
	}
	cur := now.Unix() / totpStep
	found := int64(-1)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := cur + d
		if step < 0 {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(hotp(key, uint64(step), totpDigits)), []byte(code)) == 1 && step > found {
			found = step
		}
	}
	return found
}

// totpAAD binds a sealed TOTP secret to its account: a ciphertext copied
// to another account's row does not open.
func totpAAD(accountID string) []byte { return []byte("steward staff totp v1\x00" + accountID) }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// SignInTOTP completes a pending sign-in with a TOTP code (a code is
// accepted once).
func (s *Service) SignInTOTP(ctx context.Context, pendingToken, code, ip string) (Session, error) {
	return s.secondStep(ctx, pendingToken, ip, "totp", true, func(tx pgx.Tx, p *pending, a *account, now time.Time) (string, error) {
		if !a.TOTP {
			return "", ErrWrongStep
		}
		key, err := s.keys.Open(*a.totpKID, a.totpCT, totpAAD(a.ID))
		if err != nil {
			return "", fmt.Errorf("open totp secret of %s: %w", a.ID, err)
		}
		step := matchTOTP(key, code, now)
		if step < 0 {
			return "wrong_code", nil
		}
		if a.totpLastStep != nil && step <= *a.totpLastStep {
			return "replayed_code", nil
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_accounts SET totp_last_step = $2 WHERE id = $1`, a.ID, step); err != nil {
			return "", fmt.Errorf("record totp step: %w", err)
		}
		return "", nil
	})
}

// BeginTOTPEnrolment makes a new secret for an account with no second
// factor yet. Calling it again replaces the secret (the first was never
// confirmed).
func (s *Service) BeginTOTPEnrolment(ctx context.Context, pendingToken string) (TOTPEnrolment, error) {
	var out TOTPEnrolment
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		p, err := loadPending(ctx, tx, pendingToken, now, true)
		if err != nil {
			return err
		}
		if p == nil {
			return ErrPendingExpired
		}
		a, err := loadAccount(ctx, tx, p.accountID, false)
		if err != nil {
			return err
		}
		if a == nil || a.Disabled {
			return ErrPendingExpired
		}
		if a.hasFactor() {
			// Enrolment is for an account with none: with one, a
			// password alone must not be enough to add another.
			return ErrWrongStep
		}
		key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.Issuer, AccountName: a.Email, Period: totpStep,
			Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, SecretSize: 20})
		if err != nil {
			return fmt.Errorf("generate totp secret: %w", err)
		}
		secret, err := b32.DecodeString(key.Secret())
		if err != nil {
			return fmt.Errorf("decode totp secret: %w", err)
		}
		kid, ct, err := s.keys.Seal(secret, totpAAD(a.ID))
		if err != nil {
			return fmt.Errorf("seal totp secret: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_pending SET enrol_totp_kid = $2, enrol_totp_ct = $3 WHERE token_hash = $1`, p.hash, kid, ct); err != nil {
			return fmt.Errorf("keep totp enrolment: %w", err)
		}
		img, err := key.Image(256, 256)
		if err != nil {
			return fmt.Errorf("totp qr code: %w", err)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return fmt.Errorf("totp qr code: %w", err)
		}
		out = TOTPEnrolment{Secret: key.Secret(), URL: key.URL(), QRPNG: buf.Bytes()}
		return nil
	})
	if err != nil {
		return TOTPEnrolment{}, err
	}
	return out, nil
}

// FinishTOTPEnrolment confirms the secret with a first code and signs in.
// A wrong code is audited but not counted towards the lockout: the person
// holds the secret on screen, there is nothing to guess.
func (s *Service) FinishTOTPEnrolment(ctx context.Context, pendingToken, code, ip string) (Session, error) {
	return s.secondStep(ctx, pendingToken, ip, "totp", false, func(tx pgx.Tx, p *pending, a *account, now time.Time) (string, error) {
		if a.hasFactor() || p.enrolKID == nil {
			return "", ErrWrongStep
		}
		key, err := s.keys.Open(*p.enrolKID, p.enrolCT, totpAAD(a.ID))
		if err != nil {
			return "", fmt.Errorf("open totp enrolment of %s: %w", a.ID, err)
		}
		step := matchTOTP(key, code, now)
		if step < 0 {
			return "wrong_enrolment_code", nil
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_accounts SET totp_kid = $2, totp_ct = $3, totp_last_step = $4, updated_at = $5
			WHERE id = $1`, a.ID, *p.enrolKID, p.enrolCT, step, now); err != nil {
			return "", fmt.Errorf("store totp secret: %w", err)
		}
		if err := s.appendAudit(ctx, tx, "staff:"+a.ID, "staff.totp_enrolled", a.ID, nil); err != nil {
			return "", err
		}
		return "", nil
	})
}
