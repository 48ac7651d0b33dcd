package telegram

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	testToken = "123456789:AAFakeTokenForStewardTestsOnly-xyz"
	testUser  = `{"id":279058397,"first_name":"Vladislav + - ? \/","last_name":"Kibenko","username":"vdkfrost","language_code":"ru","is_premium":true,"allows_write_to_pm":true}`
	testAge   = 24 * time.Hour
)

// testNow is fixed so the table is deterministic; auth dates are relative to it.
var testNow = time.Unix(1733509682, 0).Add(time.Hour)

// baseFields mirrors a real Mini App launch (user, query_id, chat fields,
// signature) with auth_date shifted by offset from testNow.
func baseFields(offset time.Duration) map[string]string {
	return map[string]string{
		"user":          testUser,
		"query_id":      "AAHdF6IQAAAAAN0XohDhrOrc",
		"chat_instance": "8134722200314281151",
		"chat_type":     "private",
		"start_param":   "erase",
		"auth_date":     strconv.FormatInt(testNow.Add(offset).Unix(), 10),
		"signature":     "TYJxVcisqbWjtodPepiJ6ghziUL94-KNpG8Pau-X7oNNLNBM72APCpi_RKiUlBvcqo5L-LAxIc3dnTzcZX_PDg",
	}
}

func with(offset time.Duration, k, v string) map[string]string {
	f := baseFields(offset)
	if v == "" {
		delete(f, k)
	} else {
		f[k] = v
	}
	return f
}

// specSigned builds initData without calling Sign or any package helper:
// the hash is recomputed here straight from Telegram's description, so a
// shared bug in Sign and Validate cannot make this case pass.
func specSigned(token string) string {
	authDate := strconv.FormatInt(testNow.Add(-time.Minute).Unix(), 10)
	// Already sorted by key, values decoded, joined with '\n'; hash omitted.
	dcs := "auth_date=" + authDate + "\nquery_id=Q1\nuser=" + testUser
	mac := hmac.New(sha256.New, []byte("WebAppData"))
	mac.Write([]byte(token))
	secret := mac.Sum(nil)
	mac = hmac.New(sha256.New, secret)
	mac.Write([]byte(dcs))
	hash := hex.EncodeToString(mac.Sum(nil))
	// Deliberately unsorted and %20-encoded to show order and encoding of the
	// wire form do not matter, only the decoded values.
	return "user=" + strings.ReplaceAll(url.QueryEscape(testUser), "+", "%20") +
		"&hash=" + hash + "&query_id=Q1&auth_date=" + authDate
}

// Published example from the telegram-mini-apps init-data-golang docs: a
// genuine Telegram launch (it carries a signature field) with its demo token.
// It pins compatibility with real Telegram output, not just with Sign.
const (
	realToken = "7342037359:AAHI25ES9xCOMPokpYoz-p8XVrZUdygo2J4"
	realRaw   = "user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%20%2B%20-%20%3F%20%5C%2F%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%2C%22allows_write_to_pm%22%3Atrue%2C%22photo_url%22%3A%22https%3A%5C%2F%5C%2Ft.me%5C%2Fi%5C%2Fuserpic%5C%2F320%5C%2F4FPEE4tmP3ATHa57u6MqTDih13LTOiMoKoLDRG4PnSA.svg%22%7D&chat_instance=8134722200314281151&chat_type=private&auth_date=1733509682&signature=TYJxVcisqbWjtodPepiJ6ghziUL94-KNpG8Pau-X7oNNLNBM72APCpi_RKiUlBvcqo5L-LAxIc3dnTzcZX_PDg&hash=a433d8f9847bd6addcc563bff7cc82c89e97ea0d90c11fe5729cae6796a36d73"
)

type testCase struct {
	name    string
	raw     string
	token   string
	wantErr error // nil means accepted
}

func tableCases() []testCase {
	good := Sign(baseFields(-time.Minute), testToken)
	return []testCase{
		{"valid signed example yields user", good, testToken, nil},
		{"valid spec recomputed hash", specSigned(testToken), testToken, nil},
		{"valid real telegram example", realRaw, realToken, nil},
		{"valid within clock skew", Sign(baseFields(30*time.Second), testToken), testToken, nil},
		{"bad hash tampered field", strings.Replace(good, "279058397", "279058398", 1), testToken, ErrBadHash},
		{"bad hash tampered signature", strings.Replace(good, "signature=TYJx", "signature=TYJy", 1), testToken, ErrBadHash},
		{"bad hash wrong token", good, testToken + "x", ErrBadHash},
		{"bad hash spec string under wrong token", specSigned("other:token"), testToken, ErrBadHash},
		{"bad hash not hex", good[:strings.Index(good, "hash=")] + "hash=zz", testToken, ErrBadHash},
		{"bad hash truncated", good[:len(good)-2], testToken, ErrBadHash},
		{"missing hash", good[:strings.Index(good, "&hash=")], testToken, ErrMissingHash},
		{"missing hash empty value", good[:strings.Index(good, "hash=")] + "hash=", testToken, ErrMissingHash},
		{"malformed duplicate key", good + "&auth_date=1", testToken, ErrMalformed},
		{"malformed duplicate hash", good + "&hash=00", testToken, ErrMalformed},
		{"stale auth_date", Sign(baseFields(-testAge-time.Minute), testToken), testToken, ErrStale},
		{"stale future auth_date", Sign(baseFields(10*time.Minute), testToken), testToken, ErrStale},
		{"malformed user json", Sign(with(-time.Minute, "user", `{"id":1,`), testToken), testToken, ErrMalformed},
		{"malformed user id zero", Sign(with(-time.Minute, "user", `{"id":0}`), testToken), testToken, ErrMalformed},
		{"malformed user id negative", Sign(with(-time.Minute, "user", `{"id":-5}`), testToken), testToken, ErrMalformed},
		{"malformed user id string", Sign(with(-time.Minute, "user", `{"id":"5"}`), testToken), testToken, ErrMalformed},
		{"malformed user id fraction", Sign(with(-time.Minute, "user", `{"id":1.5}`), testToken), testToken, ErrMalformed},
		{"malformed user missing", Sign(with(-time.Minute, "user", ""), testToken), testToken, ErrMalformed},
		{"malformed auth_date non-numeric", Sign(with(-time.Minute, "auth_date", "yesterday"), testToken), testToken, ErrMalformed},
		{"malformed auth_date signed", Sign(with(-time.Minute, "auth_date", "+1733509682"), testToken), testToken, ErrMalformed},
		{"malformed auth_date zero", Sign(with(-time.Minute, "auth_date", "0"), testToken), testToken, ErrMalformed},
		{"malformed auth_date missing", Sign(with(-time.Minute, "auth_date", ""), testToken), testToken, ErrMalformed},
		{"malformed oversized input", Sign(with(-time.Minute, "start_param", strings.Repeat("a", MaxInitDataLen)), testToken), testToken, ErrMalformed},
		{"malformed bad escape", "user=%zz&" + good, testToken, ErrMalformed},
		{"config empty token", good, "", ErrConfig},
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range tableCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := testNow
			if tc.token == realToken {
				now = time.Unix(1733509682, 0).Add(time.Minute)
			}
			got, err := Validate(tc.raw, tc.token, now, testAge)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				for _, secret := range []string{testToken, realToken} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error message leaks the bot token: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := User{ID: 279058397, FirstName: `Vladislav + - ? /`, LastName: "Kibenko", Username: "vdkfrost", LanguageCode: "ru"}
			if got.User != want {
				t.Fatalf("user = %+v, want %+v", got.User, want)
			}
		})
	}
}

func TestValidateFields(t *testing.T) {
	t.Parallel()
	got, err := Validate(Sign(baseFields(-time.Minute), testToken), testToken, testNow, testAge)
	if err != nil {
		t.Fatal(err)
	}
	if got.QueryID != "AAHdF6IQAAAAAN0XohDhrOrc" || got.StartParam != "erase" {
		t.Fatalf("query_id/start_param = %q/%q", got.QueryID, got.StartParam)
	}
	if want := testNow.Add(-time.Minute); !got.AuthDate.Equal(want) {
		t.Fatalf("auth_date = %v, want %v", got.AuthDate, want)
	}
}

func TestValidateRejectsNonPositiveMaxAge(t *testing.T) {
	t.Parallel()
	_, err := Validate(Sign(baseFields(-time.Minute), testToken), testToken, testNow, 0)
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}
