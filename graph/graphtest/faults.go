package graphtest

import (
	"net/http"
	"time"
)

// faultCodes are the Graph error codes the emulator sends with a scripted status.
var faultCodes = map[int]string{
	http.StatusBadRequest:          "Request_BadRequest",
	http.StatusUnauthorized:        "InvalidAuthenticationToken",
	http.StatusForbidden:           "Authorization_RequestDenied",
	http.StatusNotFound:            "Request_ResourceNotFound",
	http.StatusConflict:            "Conflict",
	http.StatusTooManyRequests:     "TooManyRequests",
	http.StatusInternalServerError: "UnknownError",
	http.StatusBadGateway:          "BadGateway",
	http.StatusServiceUnavailable:  "ServiceUnavailable",
	http.StatusGatewayTimeout:      "GatewayTimeout",
}

var faultMessages = map[int]string{
	http.StatusForbidden:          "Insufficient privileges to complete the operation.",
	http.StatusTooManyRequests:    "Too many requests. Please retry after the time given in Retry-After.",
	http.StatusServiceUnavailable: "The service is temporarily unavailable.",
}

// FailNext makes the next request (whatever its route, after the token check) fail with
// status in Graph's error shape. Calls queue up: three calls fail the next three requests.
// For 429, 503 and 504 a Retry-After header carries retryAfter in seconds, with a fraction
// when it has one (Options.RetryAfterWholeSeconds rounds up instead); 0 is sent as the
// smallest positive value (0.001), so retries in tests need not wait.
func (s *Server) FailNext(status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, faultError(status, retryAfter))
}

func faultError(status int, retryAfter time.Duration) *apiError {
	code, ok := faultCodes[status]
	if !ok {
		code = http.StatusText(status)
	}
	msg, ok := faultMessages[status]
	if !ok {
		msg = "Scripted fault: " + http.StatusText(status)
	}
	return &apiError{status: status, code: code, msg: msg, retryAfter: retryAfter}
}

// fault returns the scripted failure for this request of operation op, if any: a queued
// FailNext first, then a FailOn for op, then a draw against Options.FaultRate.
func (s *Server) fault(op string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failNext) > 0 {
		e := s.failNext[0]
		s.failNext = s.failNext[1:]
		return e
	}
	if e := s.opFault(op); e != nil {
		return e
	}
	if s.opts.FaultRate <= 0 || s.rng.Float64() >= s.opts.FaultRate {
		return nil
	}
	statuses := [...]int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable}
	return faultError(statuses[s.rng.IntN(len(statuses))], s.opts.FaultRetryAfter)
}

// PendingFaults returns how many FailNext faults have not been served yet.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.failNext)
}
