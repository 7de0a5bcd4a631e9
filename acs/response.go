package acs

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxMessageLen bounds the text an error keeps from a response body.
const maxMessageLen = 512

// Response headers read by the client.
const (
	headerCorrelation  = "MS-CV"
	headerRetryAfter   = "Retry-After"
	headerRetryAfterMS = "retry-after-ms"
	headerXMSRetryMS   = "x-ms-retry-after-ms"
)

// parseErrorBody extracts code and message from an ACS error body
// {"error":{"code":"...","message":"..."}}. A body of another shape yields no code and its
// start as the message, made printable and bounded, so an HTML page from a proxy still tells
// the operator something.
func parseErrorBody(body []byte) (code, message string) {
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err == nil && env.Error != nil {
		return clean(env.Error.Code, 128), clean(env.Error.Message, maxMessageLen)
	}
	return "", clean(string(body), maxMessageLen)
}

// clean makes s printable on one line and at most limit bytes long.
func clean(s string, limit int) string {
	s = strings.ToValidUTF8(s, "�")
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= limit {
		return s
	}
	cut := limit - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// retryAfter reads the wait a response asks for, in the order azcore's retry policy does:
// retry-after-ms, x-ms-retry-after-ms, then Retry-After (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, name := range []string{headerRetryAfterMS, headerXMSRetryMS} {
		if ms, err := strconv.ParseInt(strings.TrimSpace(h.Get(name)), 10, 64); err == nil && ms > 0 {
			return clampDuration(float64(ms), time.Millisecond)
		}
	}
	v := strings.TrimSpace(h.Get(headerRetryAfter))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return clampDuration(float64(s), time.Second)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func clampDuration(n float64, unit time.Duration) time.Duration {
	if n*float64(unit) >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(n) * unit
}
