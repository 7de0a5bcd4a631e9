package acs

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ResponseError is an error answer from the service after the client's retries. It
// classifies itself for the worker: NotFound (404), Systemic (401, 403: a bad key, a
// credential without the role, a subscription not enabled for the API) and Temporary (408,
// 429, 5xx). Every other status is permanent for the principal at hand.
type ResponseError struct {
	// Op names the call, such as "PUT assignment <objectId>" (a resource account's with
	// " as principalType <the spelling sent>").
	Op string
	// StatusCode is the HTTP status of the last try.
	StatusCode int
	// ErrorCode and Message come from the body's {"error":{"code","message"}}; for a body
	// that is not that JSON, Message holds the start of the body as text.
	ErrorCode string
	Message   string
	// CorrelationID is the ms-cv response header, for support cases.
	CorrelationID string
	// RetryAfterDuration is the wait the service asked for (0 when it did not say).
	RetryAfterDuration time.Duration
}

func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "acs: %s: %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	b.WriteString(" (code=" + orDash(e.ErrorCode) + ", ms-cv=" + orDash(e.CorrelationID))
	if e.RetryAfterDuration > 0 {
		b.WriteString(", retry-after=" + e.RetryAfterDuration.String())
	}
	b.WriteString(")")
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	switch e.StatusCode {
	case http.StatusUnauthorized:
		b.WriteString(" [the service refused our credentials: check the access key in the connection string, or the token's audience]")
	case http.StatusForbidden:
		b.WriteString(" [the service refused access: check the identity's role on the resource and that the subscription is enabled for Teams Phone extensibility]")
	}
	return b.String()
}

// NotFound reports whether the assignment does not exist.
func (e *ResponseError) NotFound() bool { return e.StatusCode == http.StatusNotFound }

// Systemic reports whether the fault is the deployment's (credentials, permissions, API not
// enabled) rather than the principal's.
func (e *ResponseError) Systemic() bool {
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// Temporary reports whether a later retry may succeed.
func (e *ResponseError) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests ||
		e.StatusCode >= 500
}

// RetryAfter returns the wait the service asked for, or 0.
func (e *ResponseError) RetryAfter() time.Duration { return e.RetryAfterDuration }

// ThrottledError is returned without waiting when the service asks for a wait longer than
// Options.MaxThrottleWait. It is Temporary and carries the wait in RetryAfter.
type ThrottledError struct {
	Op    string
	Wait  time.Duration // what the service asked for
	Limit time.Duration // Options.MaxThrottleWait
	// Response is the throttling answer itself.
	Response *ResponseError
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("acs: %s: throttled: the service asked to wait %s, more than the %s the client waits (ms-cv=%s)",
		e.Op, e.Wait, e.Limit, orDash(e.Response.CorrelationID))
}

// Temporary is always true: the call may succeed after the wait.
func (e *ThrottledError) Temporary() bool { return true }

// RetryAfter returns the wait the service asked for.
func (e *ThrottledError) RetryAfter() time.Duration { return e.Wait }

// Unwrap returns the throttling response.
func (e *ThrottledError) Unwrap() error { return e.Response }

// TransportError is a failure to get any answer (connection refused or reset, a try that
// timed out) after the client's retries. It is Temporary.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string { return "acs: " + e.Op + ": no answer: " + e.Err.Error() }

// Temporary is always true.
func (e *TransportError) Temporary() bool { return true }

// Unwrap returns the underlying transport error.
func (e *TransportError) Unwrap() error { return e.Err }

// ValidationError is a caller's mistake found before any request was sent: a malformed
// connection string or endpoint, an id that is not a GUID, an assignment that cannot be
// written. It is permanent (no behaviour method says otherwise). Value is never a secret.
type ValidationError struct {
	Field  string
	Value  string // may be empty
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Value == "" {
		return "acs: " + e.Field + " " + e.Reason
	}
	return fmt.Sprintf("acs: %s %q %s", e.Field, e.Value, e.Reason)
}

type (
	notFounder  interface{ NotFound() bool }
	systemic    interface{ Systemic() bool }
	temporary   interface{ Temporary() bool }
	retryAfterE interface{ RetryAfter() time.Duration }
)

// IsNotFound reports whether err says the assignment does not exist.
func IsNotFound(err error) bool {
	var e notFounder
	return errors.As(err, &e) && e.NotFound()
}

// IsSystemic reports whether err is a fault of the deployment (401, 403).
func IsSystemic(err error) bool {
	var e systemic
	return errors.As(err, &e) && e.Systemic()
}

// IsTemporary reports whether err is worth retrying later.
func IsTemporary(err error) bool {
	var e temporary
	return errors.As(err, &e) && e.Temporary()
}

// IsThrottled reports whether err is a throttling answer (429), whether the client gave up
// waiting (ThrottledError) or ran out of retries.
func IsThrottled(err error) bool {
	var t *ThrottledError
	if errors.As(err, &t) {
		return true
	}
	var r *ResponseError
	return errors.As(err, &r) && r.StatusCode == http.StatusTooManyRequests
}

// RetryAfterOf returns the wait err says the service asked for, or 0.
func RetryAfterOf(err error) time.Duration {
	var e retryAfterE
	if errors.As(err, &e) {
		return e.RetryAfter()
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// CredentialError is a failure to authenticate a request before it was sent: the token
// credential could not produce a token. It is Systemic: no message will fare better until
// the deployment's identity is fixed.
type CredentialError struct {
	Op  string
	Err error
}

func (e *CredentialError) Error() string { return "acs: " + e.Op + ": credential: " + e.Err.Error() }

// Systemic is always true.
func (e *CredentialError) Systemic() bool { return true }

// Unwrap returns the credential's error.
func (e *CredentialError) Unwrap() error { return e.Err }
