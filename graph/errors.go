package graph

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// Error is a failed Graph call, classified by behaviour for the worker (see the methods).
// StatusCode is 0 when no usable response came back (transport error, timeout, credential
// failure, an incomplete answer); Code and Message are Graph's error.code and error.message.
type Error struct {
	Op                 string // what was attempted, e.g. "get user 1f0c…"
	StatusCode         int
	Code               string
	Message            string
	RequestID          string        // Graph's request-id, for support cases
	RetryAfterDuration time.Duration // the Retry-After Graph sent, 0 when none

	credential bool  // the token could not be acquired
	incomplete bool  // a 2xx answer lacked a selected property or its value array
	cause      error // the underlying transport or credential error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("graph: " + e.Op + ": ")
	switch {
	case e.credential:
		b.WriteString("acquire token: ")
	case e.StatusCode != 0:
		b.WriteString(strconv.Itoa(e.StatusCode) + " ")
	}
	if e.Code != "" {
		b.WriteString(e.Code + ": ")
	}
	if e.Message != "" {
		b.WriteString(e.Message)
	} else if e.cause != nil {
		b.WriteString(e.cause.Error())
	}
	if e.RequestID != "" {
		b.WriteString(" (request-id " + e.RequestID + ")")
	}
	return b.String()
}

// Unwrap returns the transport or credential error behind e, if any.
func (e *Error) Unwrap() error { return e.cause }

// NotFound reports that the principal does not exist (a soft-deleted user reads the same):
// only a 404 with Graph's Request_ResourceNotFound or ResourceNotFound code.
func (e *Error) NotFound() bool {
	return e.StatusCode == http.StatusNotFound &&
		(e.Code == "Request_ResourceNotFound" || e.Code == "ResourceNotFound")
}

// Systemic reports a fault of the deployment rather than of the principal: 401, 403
// (Authorization_RequestDenied and other refusals) or a token that could not be acquired.
func (e *Error) Systemic() bool {
	return e.credential || e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// Incomplete reports a successful answer that lacked what was selected (a property of
// $select, the value array of a collection). It is Temporary: such an answer decides
// nothing, least of all that a user is disabled or unlicensed.
func (e *Error) Incomplete() bool { return e.incomplete }

// Temporary reports a failure worth retrying later: 408, 429, 5xx, timeouts, transport
// errors and incomplete answers. Exhausted 5xx retries stay temporary and are never NotFound.
func (e *Error) Temporary() bool {
	switch {
	case e.credential:
		return false
	case e.StatusCode == 0:
		return true
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return true
	}
	return e.StatusCode >= 500
}

// RetryAfter is how long Graph asked us to wait (0 when it did not say).
func (e *Error) RetryAfter() time.Duration { return e.RetryAfterDuration }

// Conflict reports a 409: on subscription create, one for the same resource and changeType
// already exists (whatever its notification URL).
func (e *Error) Conflict() bool { return e.StatusCode == http.StatusConflict }

// classify turns whatever the SDK returned into an *Error with op as context.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ge *Error
	if errors.As(err, &ge) {
		return err
	}
	e := &Error{Op: op}
	var oe *odataerrors.ODataError
	var ae *abs.ApiError
	var nonRetriable interface{ NonRetriable() }
	var incomplete *errIncomplete
	switch {
	case errors.As(err, &incomplete):
		e.incomplete, e.cause = true, err
	case errors.As(err, &oe):
		e.StatusCode = oe.ResponseStatusCode
		fromHeaders(e, oe.ResponseHeaders)
		if main := oe.GetErrorEscaped(); main != nil {
			e.Code, e.Message = deref(main.GetCode()), deref(main.GetMessage())
			if in := main.GetInnerError(); in != nil && deref(in.GetRequestId()) != "" {
				e.RequestID = deref(in.GetRequestId())
			}
		}
	case errors.As(err, &ae):
		e.StatusCode, e.Message = ae.ResponseStatusCode, ae.Message
		fromHeaders(e, ae.ResponseHeaders)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.cause = err
	case errors.As(err, &nonRetriable):
		// azidentity's AuthenticationFailedError and credentialUnavailableError: the SDK
		// asked the credential for a token before sending anything.
		e.credential, e.cause = true, err
	default: // transport errors (net.Error, TLS, reset) and anything unexpected: retry later
		e.cause = err
	}
	return e
}

func fromHeaders(e *Error, h *abs.ResponseHeaders) {
	if h == nil {
		return
	}
	if v := first(h.Get("request-id")); v != "" {
		e.RequestID = v
	}
	e.RetryAfterDuration = parseRetryAfter(first(h.Get("Retry-After")), time.Now())
}

// maxRetryAfter caps a Retry-After, so a hostile or garbled value cannot overflow a
// Duration or park work for days.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads Retry-After: delta-seconds, which Graph may send with a fraction
// ("2.128" in its throttling guidance; rounded up to the millisecond), or an HTTP date. 0
// means none, or a value that is not one of those.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if isDeltaSeconds(v) {
		s, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil && !errors.Is(err, strconv.ErrRange), s <= 0:
			return 0
		case s >= maxRetryAfter.Seconds():
			return maxRetryAfter
		}
		return time.Duration(math.Ceil(s*1000)) * time.Millisecond
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// isDeltaSeconds reports whether v is digits with an optional fraction ("10", "2.128").
func isDeltaSeconds(v string) bool {
	digits, frac, _ := strings.Cut(v, ".")
	return digits != "" && allDigits(digits) && allDigits(frac)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Compile-time check that *Error speaks the worker's behaviour contract.
var _ interface {
	NotFound() bool
	Systemic() bool
	Temporary() bool
	RetryAfter() time.Duration
} = (*Error)(nil)
