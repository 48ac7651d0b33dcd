package refapp

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// Unique values (ids, emails, Telegram ids, provider ids) are derived from
// the person's global index (index + IDOffset), never from the random
// stream: two Generate calls with different seeds and disjoint offsets then
// cannot collide, and a collision within one call is impossible by
// construction rather than unlikely.

// idKind separates the id spaces, so a session id and a payment id of the
// same person and row number still differ.
type idKind uint8

const (
	kUser idKind = iota + 1
	kAccount
	kSession
	kSessionToken
	kImpersonationSession
	kImpersonationToken
	kVerification
	kImpersonation
	kRiskFlag
	kVisitor
	kQuota
	kStripeCustomer
	kCreemCustomer
	kSubscription
	kProviderSubscription
	kPayment
	kProviderPayment
	kInvoice
	kProviderInvoice
	kBillingProfile
	kGrant
	kCreditTx
	kDispute
	kProviderDispute
	kJob
	kProviderRequest
	kBatch
	kAsset
	kMigration
	kTicket
	kMessage
	kNewsletter
	kSurvey
	kTelegram
	kTgGeneration
	kWavespeed
	kTgPayment
	kStarCharge
	kTgCreditTx
	kReferral
	kRequestLog
	kGoogleSub
	kGitHubID
)

const (
	// personBits and rowBits pack (kind, person, row) into one uint64.
	personBits = 40
	rowBits    = 16
	maxPeople  = 1 << personBits
	maxRows    = 1 << rowBits
)

// key packs an id's coordinates into 64 bits without loss.
func key(k idKind, person, row int) uint64 {
	return uint64(k)<<(personBits+rowBits) | uint64(person)<<rowBits | uint64(row)
}

// mix64 is splitmix64's finalizer: a bijection on uint64, so distinct keys
// give distinct, random-looking words.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

const golden = 0x9e3779b97f4a7c15

// rowID is a row's UUID. It is a pgtype.UUIDValuer, so pgx sends it in
// binary (a uuid.UUID would go through driver.Valuer and a string, a third
// of the generator's CPU), and it prints like a UUID.
type rowID [16]byte

func (u rowID) UUIDValue() (pgtype.UUID, error) { return pgtype.UUID{Bytes: u, Valid: true}, nil }
func (u rowID) String() string                  { return uuid.UUID(u).String() }

// uuidFor is a version-4-shaped UUID for (kind, person, row). Its first eight
// bytes are a bijection of the key (less the four version bits), the rest a
// second mix; distinct keys collide with probability about 2^-120.
func uuidFor(k idKind, person, row int) rowID {
	x := key(k, person, row)
	var u rowID
	binary.BigEndian.PutUint64(u[:8], mix64(x))
	binary.BigEndian.PutUint64(u[8:], mix64(x^golden))
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// textID is an n-character base62 id (n >= 11) for (kind, person, row), like
// Better Auth's or a payment provider's. The first 11 characters encode a
// bijection of the key, so ids of distinct keys always differ.
func textID(k idKind, person, row, n int) string {
	b := make([]byte, 0, n)
	x := mix64(key(k, person, row))
	for len(b) < n {
		w := x
		for i := 0; i < 11 && len(b) < n; i++ {
			b = append(b, base62[w%62])
			w /= 62
		}
		x = mix64(x ^ golden)
	}
	return string(b)
}

// hexID is a 32-hex-digit id (a Wavespeed request id); its first 16 digits
// are a bijection of the key.
func hexID(k idKind, person, row int) string {
	x := key(k, person, row)
	b := make([]byte, 32)
	for i, w := range []uint64{mix64(x), mix64(x ^ golden)} {
		for j := 15; j >= 0; j-- {
			b[i*16+j] = hexDigits[w&15]
			w >>= 4
		}
	}
	return string(b)
}

// randString is n random characters of alphabet, for values that need not
// be unique (tokens, signatures, file ids).
func randString(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

const (
	hexDigits = "0123456789abcdef"
	base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)
