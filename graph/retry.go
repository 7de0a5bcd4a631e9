package graph

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	khttp "github.com/microsoft/kiota-http-go"
)

// Retry limits, as kiota-http-go's RetryHandler has them.
const (
	defaultMaxRetries = 3
	maxMaxRetries     = 10
	// maxRetryWait bounds the total wait of one call. A Retry-After that would take the
	// call past it is not waited: the call ends with the answer, whose RetryAfter tells the
	// caller when to try again.
	maxRetryWait = 3 * time.Minute
	// backoffBase is the first wait when a retriable answer has no usable Retry-After,
	// doubled on each retry, plus up to a second of jitter.
	backoffBase = 3 * time.Second
)

// retryHandler retries 429, 503 and 504 answers and waits what Retry-After asks, to the
// millisecond. It replaces kiota-http-go's RetryHandler (v1.5.4), which truncates a
// fractional Retry-After to whole seconds — Graph sends fractions ("Retry-After: 2.128" in
// its throttling guidance), so a 0.4 s wait became none and the retry was throttled again —
// and which waits any Retry-After, however long, before looking at its total.
type retryHandler struct {
	maxRetries int // < 0: never retry
	log        *slog.Logger
}

func newRetryHandler(maxRetries int, log *slog.Logger) retryHandler {
	switch {
	case maxRetries == 0:
		maxRetries = defaultMaxRetries
	case maxRetries > maxMaxRetries:
		maxRetries = maxMaxRetries
	}
	return retryHandler{maxRetries: maxRetries, log: log}
}

// Intercept implements khttp.Middleware.
func (h retryHandler) Intercept(p khttp.Pipeline, i int, req *http.Request) (*http.Response, error) {
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		resp, err := p.Next(req, i)
		if err != nil || !retriable(resp.StatusCode) || attempt > h.maxRetries || !rewindable(req) {
			return resp, err
		}
		wait := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if wait <= 0 {
			wait = backoffBase<<(attempt-1) + time.Duration(rand.Int64N(int64(time.Second)))
		}
		if waited+wait > maxRetryWait {
			return resp, nil
		}
		h.log.Debug("graph retry", "method", req.Method, "path", req.URL.Path, "status", resp.StatusCode,
			"attempt", attempt, "retry_after", resp.Header.Get("Retry-After"), "wait", wait, "waited", waited)
		drain(resp)
		t := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
		waited += wait
		req.Header.Set("Retry-Attempt", strconv.Itoa(attempt))
		if s, ok := req.Body.(io.Seeker); ok {
			if _, err := s.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
		}
	}
}

func retriable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable ||
		status == http.StatusGatewayTimeout
}

// rewindable reports whether the request can be sent again: no body, or one that seeks.
func rewindable(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	_, ok := req.Body.(io.Seeker)
	return ok
}

// drain reads a little of a body we will not use and closes it, so the connection is reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
