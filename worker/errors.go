package worker

import (
	"errors"
	"strings"
	"time"
)

// The worker classifies its collaborators' errors by behaviour, never by string or by
// concrete type, so it needs no import of the graph or acs packages. An error (or any error
// it wraps) may implement any of these methods:
//
//	NotFound() bool              the principal or assignment does not exist
//	Systemic() bool              not the message's fault: bad key, no permission, API not enabled
//	Temporary() bool             worth retrying later: 408, 429, 5xx, timeouts, transport errors
//	RetryAfter() time.Duration   how long the service asked us to wait (0 = not said)
//
// An error that says none of these is permanent for the principal at hand.
type (
	notFoundError  interface{ NotFound() bool }
	systemicError  interface{ Systemic() bool }
	temporaryError interface{ Temporary() bool }
	retryAfterErr  interface{ RetryAfter() time.Duration }
)

// IsNotFound reports whether err says the principal or assignment does not exist.
func IsNotFound(err error) bool {
	var e notFoundError
	return errors.As(err, &e) && e.NotFound()
}

// IsSystemic reports whether err is a fault of the deployment rather than of the message
// (bad key, missing permission, API not enabled): the worker pauses instead of retrying.
func IsSystemic(err error) bool {
	var e systemicError
	return errors.As(err, &e) && e.Systemic()
}

// IsTemporary reports whether err is worth retrying later (throttling, 5xx, timeouts,
// transport errors).
func IsTemporary(err error) bool {
	var e temporaryError
	return errors.As(err, &e) && e.Temporary()
}

// RetryAfterOf returns the wait the service asked for, or 0.
func RetryAfterOf(err error) time.Duration {
	var e retryAfterErr
	if errors.As(err, &e) {
		return e.RetryAfter()
	}
	return 0
}

// PermanentError is a message-level failure that no retry can fix: the message is
// dead-lettered with Reason (a short code such as "malformed", "untrusted",
// "unknown_shape", "not_a_user") and Description (human-readable, never holding a secret).
type PermanentError struct {
	Reason      string
	Description string
}

func (e *PermanentError) Error() string { return e.Reason + ": " + e.Description }

// Dead-letter reason codes.
const (
	ReasonMalformed    = "malformed"     // not JSON, or JSON of the wrong types
	ReasonTooLarge     = "too_large"     // body over MaxBodyBytes
	ReasonUntrusted    = "untrusted"     // clientState or tenantId mismatch
	ReasonUnknownShape = "unknown_shape" // none of the documented envelopes
	ReasonNotAUser     = "not_a_user"    // a resource path that names no user or group
	ReasonBadPrincipal = "bad_principal" // a principal that cannot exist (not a GUID nor a UPN)
	ReasonRejected     = "rejected"      // the directory or ACS refused the principal for good (4xx)
)

// RedactSecret cuts secret out of text (a collaborator's error may echo a request).
func RedactSecret(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "[redacted]")
}
