package api

import (
	"reflect"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/apperr"
)

var decodeCases = []struct {
	body  string
	ok    bool
	field string
}{
	{`{"subject":"tg:1","purpose":"analytics","state":"granted","source":"bot","notice_version":"1.0"}`, true, ""},
	{`{"subject":"tg:1","linked_subjects":["email:a@b.co"]}`, true, ""},
	{`{"checks":[{"subject":"tg:1","purpose":"analytics","age":30}]}`, true, ""},
	{``, false, ""},
	{`   `, false, ""},
	{`{`, false, ""},
	{`[]`, false, ""},
	{`"str"`, false, ""},
	{`null`, true, ""},
	{`{"subject":1}`, false, "subject"},
	{`{"linked_subjects":"email:a@b.co"}`, false, "linked_subjects"},
	{`{"colour":"red"}`, false, "colour"},
	{`{"subject":"tg:1"} {"x":1}`, false, ""},
	{`{"subject":"tg:1"}garbage`, false, ""},
	{`{"checks":[{"subject":"tg:1","age":"old"}]}`, false, "checks.age"},
	{`{"checks":[{"subject":"tg:1","extra":true}]}`, false, "extra"},
	// Text a store could not keep as sent: NUL, invalid UTF-8, a lone
	// surrogate escape; a U+FFFD the caller sent, or an emoji, is kept.
	{`{"subject":"tg:1\u0000"}`, false, "subject"},
	{"{\"notice_version\":\"1.\xff\"}", false, "notice_version"},
	{`{"linked_subjects":["email:a@b.co","\udc00"]}`, false, "linked_subjects[1]"},
	{`{"checks":[{"subject":"tg:1","purpose":"a\u0000"}]}`, false, "checks[0].purpose"},
	{`{"subject":"caf\ufffd"}`, true, ""},
	{`{"subject":"\ud83d\ude00"}`, true, ""},
}

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeCases {
		var rec recordRequest
		var batch batchRequest
		var err error
		if strings.Contains(tc.body, "checks") {
			err = decodeStrict([]byte(tc.body), &batch)
		} else {
			err = decodeStrict([]byte(tc.body), &rec)
		}
		if tc.ok != (err == nil) {
			t.Errorf("%q: err = %v, want ok=%v", tc.body, err, tc.ok)
			continue
		}
		if err == nil {
			continue
		}
		ae, isApp := apperr.As(err)
		if !isApp || ae.Code != apperr.Invalid {
			t.Errorf("%q: not an invalid_request: %v", tc.body, err)
		}
		if tc.field != "" && (len(ae.Fields) == 0 || ae.Fields[0].Field != tc.field) {
			t.Errorf("%q: fields %+v, want %s", tc.body, ae.Fields, tc.field)
		}
	}
}

// fuzzDecode asserts the decoders never panic and every refusal is an
// invalid_request a person can read.
func fuzzDecode(t *testing.T, body []byte, v any) {
	err := decodeStrict(body, v)
	if err == nil {
		// Whatever is accepted holds only text PostgreSQL stores as sent.
		if bad := badText(reflect.ValueOf(v), "", false); bad != "" {
			t.Fatalf("accepted NUL or invalid UTF-8 in %s", bad)
		}
		return
	}
	ae, ok := apperr.As(err)
	if !ok || ae.Code != apperr.Invalid || ae.Message == "" {
		t.Fatalf("decode error is not a clear invalid_request: %v", err)
	}
}

func FuzzDecodeRecordRequest(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v recordRequest
		fuzzDecode(t, body, &v)
	})
}

func FuzzDecodeBatchRequest(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v batchRequest
		fuzzDecode(t, body, &v)
	})
}
