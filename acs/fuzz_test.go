package acs

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseConnectionString: no input panics; an accepted one has a usable endpoint and key;
// a refusal never repeats the access key.
func FuzzParseConnectionString(f *testing.F) {
	f.Add("endpoint=https://contoso.communication.azure.com/;accesskey=" + testKey)
	f.Add("Endpoint=http://127.0.0.1:8080;AccessKey=pw==;")
	f.Add("endpoint=http://example.com/;accesskey=c2VjcmV0")
	f.Fuzz(func(t *testing.T, cs string) {
		got, err := parseConnectionString(cs)
		if err != nil {
			for _, seg := range strings.Split(cs, ";") {
				name, value, _ := strings.Cut(seg, "=")
				value = strings.TrimSpace(value)
				if strings.EqualFold(strings.TrimSpace(name), "accesskey") && len(value) >= 8 && strings.Contains(err.Error(), value) {
					t.Fatalf("error %q repeats the access key", err)
				}
			}
			return
		}
		if len(got.key) == 0 {
			t.Fatal("accepted an empty key")
		}
		u := got.endpoint
		if u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
			t.Fatalf("accepted endpoint %q", u)
		}
	})
}

// FuzzParseErrorBody: no body panics; the message is bounded printable UTF-8; the service's
// shape round-trips.
func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte(`{"error":{"code":"SubscriptionNotAllowed","message":"Not enabled."}}`))
	f.Add([]byte("<html>502</html>"))
	f.Add([]byte{0xff, 0xfe, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		code, msg := parseErrorBody(body)
		for _, s := range []string{code, msg} {
			if !utf8.ValidString(s) || len(s) > maxMessageLen || strings.ContainsAny(s, "\r\n\t\x00") {
				t.Fatalf("parseErrorBody() gave %q: not bounded printable text", s)
			}
		}
		var env struct {
			Error *struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &env) == nil && env.Error != nil {
			if want := clean(env.Error.Code, 128); code != want {
				t.Fatalf("code = %q, want %q", code, want)
			}
		}
	})
}
