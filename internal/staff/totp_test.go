package staff

import (
	"testing"
	"time"
)

// TestHOTPRFC6238Vectors checks the HMAC-SHA1 vectors of RFC 6238,
// Appendix B (8 digits, 30-second steps, the ASCII seed "1234…890").
func TestHOTPRFC6238Vectors(t *testing.T) {
	t.Parallel()
	key := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		code string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		if got := hotp(key, uint64(v.unix/30), 8); got != v.code {
			t.Errorf("T=%d: %s, want %s", v.unix, got, v.code)
		}
		// The 6-digit code the service checks is the same value's last
		// six digits.
		if got := totpAt(key, time.Unix(v.unix, 0)); got != v.code[2:] {
			t.Errorf("T=%d 6 digits: %s, want %s", v.unix, got, v.code[2:])
		}
	}
}

func TestMatchTOTP(t *testing.T) {
	t.Parallel()
	key := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0) // step 37037037
	step := now.Unix() / 30
	at := func(d int64) string { return hotp(key, uint64(step+d), 6) }
	for _, c := range []struct {
		name, code string
		want       int64
	}{
		{"the current step", at(0), step},
		{"one step behind (drift)", at(-1), step - 1},
		{"one step ahead (drift)", at(1), step + 1},
		{"two steps behind is refused", at(-2), -1},
		{"two steps ahead is refused", at(2), -1},
		{"spaces typed in the code are ignored", at(0)[:3] + " " + at(0)[3:], step},
		{"too short", at(0)[:5], -1},
		{"too long", at(0) + "1", -1},
		{"empty", "", -1},
		{"letters", "abcdef", -1},
	} {
		if got := matchTOTP(key, c.code, now); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// FuzzMatchTOTP: whatever is typed, a match is only ever the current step
// or one either side, for a code that is six digits once spaces go.
func FuzzMatchTOTP(f *testing.F) {
	key := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	for _, s := range []string{hotp(key, 37037037, 6), "081 804", "", "abcdef", "1234567", "٠١٢٣٤٥"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		step := matchTOTP(key, code, now)
		if step == -1 {
			return
		}
		if d := step - now.Unix()/30; d < -1 || d > 1 {
			t.Fatalf("%q matched step %d", code, step)
		}
		if hotp(key, uint64(step), 6) != normalizeCode(code) {
			t.Fatalf("%q matched a step whose code is %s", code, hotp(key, uint64(step), 6))
		}
	})
}
