package telegram

import "testing"

// FuzzValidate checks that arbitrary input never panics and that acceptance
// is stable and always carries an attributable user. Seeds are the table
// cases so mutation starts next to every accept/reject boundary.
func FuzzValidate(f *testing.F) {
	for _, tc := range tableCases() {
		f.Add(tc.raw, tc.token)
	}
	f.Fuzz(func(t *testing.T, raw, token string) {
		got, err := Validate(raw, token, testNow, testAge)
		if err != nil {
			return
		}
		if got.User.ID <= 0 {
			t.Fatalf("accepted user id %d", got.User.ID)
		}
		again, err := Validate(raw, token, testNow, testAge)
		if err != nil || again != got {
			t.Fatalf("re-validation differs: %+v, %v", again, err)
		}
	})
}
