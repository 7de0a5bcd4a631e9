package acstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// signedHeaders is the only SignedHeaders value the ACS HMAC scheme uses.
const signedHeaders = "x-ms-date;host;x-ms-content-sha256"

// authenticate checks the request's credentials against the current key or bearer token. It
// returns "" when they hold, else why not, in words that never repeat a secret.
func (s *Server) authenticate(r *http.Request, body []byte) string {
	s.mu.Lock()
	key, bearer, now, skew := s.key, s.opts.BearerToken, s.opts.Now(), s.opts.MaxSkew
	s.mu.Unlock()

	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		return "the Authorization header is missing"
	case hasPrefixFold(auth, "Bearer "):
		if bearer == "" {
			return "bearer tokens are not accepted by this emulator; sign the request with the access key"
		}
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(auth[len("Bearer "):])), []byte(bearer)) != 1 {
			return "the bearer token is not valid"
		}
		return ""
	case hasPrefixFold(auth, "HMAC-SHA256 "):
		return verifyHMAC(r, body, auth[len("HMAC-SHA256 "):], key, now, skew)
	}
	return "the Authorization scheme must be HMAC-SHA256 or Bearer"
}

// verifyHMAC recomputes the string to sign from the request as received and compares
// signatures in constant time.
func verifyHMAC(r *http.Request, body []byte, params string, key []byte, now time.Time, skew time.Duration) string {
	var headers, sig string
	for _, p := range strings.Split(params, "&") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch {
		case strings.EqualFold(name, "SignedHeaders"):
			headers = value
		case strings.EqualFold(name, "Signature"):
			sig = value
		}
	}
	if !strings.EqualFold(headers, signedHeaders) {
		return "SignedHeaders must be " + signedHeaders
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(got) == 0 {
		return "the Signature is missing or not base64"
	}
	dateHeader := r.Header.Get("x-ms-date")
	if dateHeader == "" {
		return "the x-ms-date header is missing"
	}
	date, err := http.ParseTime(dateHeader)
	if err != nil {
		return "the x-ms-date header is not an HTTP date"
	}
	if d := date.Sub(now); d > skew || d < -skew {
		return fmt.Sprintf("x-ms-date %s is %s away from the server's clock (at most %s allowed)", dateHeader, d.Round(time.Second), skew)
	}
	hash := r.Header.Get("x-ms-content-sha256")
	if hash == "" {
		return "the x-ms-content-sha256 header is missing"
	}
	sum := sha256.Sum256(body)
	if subtle.ConstantTimeCompare([]byte(hash), []byte(base64.StdEncoding.EncodeToString(sum[:]))) != 1 {
		return "x-ms-content-sha256 does not match the body received"
	}
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI()
	}
	toSign := strings.ToUpper(r.Method) + "\n" + target + "\n" + dateHeader + ";" + r.Host + ";" + hash
	m := hmac.New(sha256.New, key)
	m.Write([]byte(toSign))
	if !hmac.Equal(got, m.Sum(nil)) {
		return "the signature does not match (wrong access key, or the request changed after signing)"
	}
	return ""
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
