package graphtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// apiError is an error response in Graph's shape.
type apiError struct {
	status     int
	code, msg  string
	retryAfter time.Duration // sent as Retry-After (formatRetryAfter) when > 0 or throttling
}

func badRequest(code, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, msg: msg}
}

func notFound(id string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "Request_ResourceNotFound",
		msg: fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)}
}

// writeError writes {"error":{"code","message","innerError":{"date","request-id",
// "client-request-id"}}} with the request-id header, as Graph does; a 429 also carries
// innerError code and status "429" and the messages of the throttling guidance's sample.
// Throttling and unavailability answers always carry a positive Retry-After.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	reqID := w.Header().Get("request-id")
	if e.retryAfter > 0 || e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable || e.status == http.StatusGatewayTimeout {
		w.Header().Set("Retry-After", formatRetryAfter(e.retryAfter, s.opts.RetryAfterWholeSeconds))
	}
	inner := map[string]any{
		"date":              s.now().UTC().Format("2006-01-02T15:04:05"),
		"request-id":        reqID,
		"client-request-id": w.Header().Get("client-request-id"),
	}
	msg := e.msg
	if e.status == http.StatusTooManyRequests {
		inner["code"], inner["status"], inner["message"] = "429", "429", "Please retry after"
		msg = "Please retry again later."
	}
	writeJSON(w, e.status, map[string]any{"error": map[string]any{"code": e.code, "message": msg, "innerError": inner}})
}

// formatRetryAfter writes d as delta-seconds: with up to three decimals when d is not whole
// (Graph's throttling guidance shows "Retry-After: 2.128"), or rounded up to whole seconds
// when whole is set. It is never 0: a zero d (a test that must not wait) is the smallest
// positive value, 0.001 or, in whole seconds, 1.
func formatRetryAfter(d time.Duration, whole bool) string {
	if whole {
		return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
	}
	ms := max((d+time.Millisecond-1)/time.Millisecond, 1)
	return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
