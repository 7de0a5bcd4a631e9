// Package limiter is the adaptive concurrency limit of backfill's directory and ACS calls:
// it narrows on throttling (429, 503 with Retry-After) and widens again on success.
package limiter

import (
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
)

// Adaptive bounds how many calls to Graph and ACS are in flight, and adapts the bound
// to what the services tolerate (additive increase, multiplicative decrease): a throttled
// call halves the limit and pauses new acquisitions for the Retry-After the service asked
// for; every window of successes (as many as the current limit) adds one. Concurrent
// throttles caused by one burst halve the limit once, not once each. It is safe for
// concurrent use; share one between the Graph and ACS transports.
type Adaptive struct {
	clock clk.Clock

	mu          sync.Mutex
	floor, ceil int
	limit       int
	inflight    int
	successes   int       // since the limit last changed
	gen         int       // bumped on every decrease; a throttle from an older gen is ignored
	pausedUntil time.Time // no acquisition before this
	lowest      int
	highest     int
	throttles   int
	changed     chan struct{} // closed (and replaced) when a waiter may proceed
}

// Stats is what an Adaptive saw, for the backfill summary.
type Stats struct {
	Min, Max  int // lowest and highest limit reached
	Current   int
	Throttles int // throttled calls reported
}

// New returns a limiter starting at max concurrent calls that never goes
// below min nor above max. min is raised to 1 and max to min when smaller.
func New(lo, hi int) *Adaptive {
	lo = max(lo, 1)
	hi = max(hi, lo)
	return &Adaptive{
		clock: clk.System{}, floor: lo, ceil: hi, limit: hi,
		lowest: hi, highest: hi, changed: make(chan struct{}),
	}
}

// Acquire waits for a free slot (and for any Retry-After pause to end) and returns the
// function that gives it back. The caller must call release exactly once, saying whether
// the call was throttled and how long the service asked to wait (0 = not said). Acquire
// fails only when ctx ends first.
func (l *Adaptive) Acquire(ctx context.Context) (func(throttled bool, retryAfter time.Duration), error) {
	for {
		l.mu.Lock()
		wait, changed := l.tryAcquireLocked()
		if wait == 0 && changed == nil {
			gen := l.gen
			l.mu.Unlock()
			var once sync.Once
			return func(throttled bool, retryAfter time.Duration) {
				once.Do(func() { l.release(gen, throttled, retryAfter) })
			}, nil
		}
		l.mu.Unlock()
		var timer <-chan time.Time
		if wait > 0 {
			timer = l.clock.After(wait)
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-timer:
		case <-changed:
		}
	}
}

// tryAcquireLocked takes a slot, or says how long the pause lasts, or hands back the
// channel that signals a released slot.
func (l *Adaptive) tryAcquireLocked() (time.Duration, chan struct{}) {
	if wait := l.pausedUntil.Sub(l.clock.Now()); wait > 0 {
		return wait, nil
	}
	if l.inflight >= l.limit {
		return 0, l.changed
	}
	l.inflight++
	return 0, nil
}

func (l *Adaptive) release(gen int, throttled bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	switch {
	case throttled:
		l.throttles++
		if until := l.clock.Now().Add(retryAfter); retryAfter > 0 && until.After(l.pausedUntil) {
			l.pausedUntil = until
		}
		if gen == l.gen { // the first throttle of this burst
			l.setLimitLocked(max(l.floor, l.limit/2))
			l.gen++
		}
	case l.successes+1 >= l.limit:
		l.setLimitLocked(min(l.ceil, l.limit+1))
	default:
		l.successes++
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Adaptive) setLimitLocked(n int) {
	l.limit, l.successes = n, 0
	l.lowest, l.highest = min(l.lowest, n), max(l.highest, n)
}

// Stats returns the lowest, highest and current limit and the throttles seen so far.
func (l *Adaptive) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Min: l.lowest, Max: l.highest, Current: l.limit, Throttles: l.throttles}
}

// Transport wraps next so that every request holds a slot of the limiter until its
// response body is read to the end or closed. A 429, or a 503 with a Retry-After, counts
// as throttled, with the wait taken from Retry-After (seconds or an HTTP date),
// retry-after-ms or x-ms-retry-after-ms. Wrap the innermost transport, below the SDKs'
// retry policies, so each retry waits its turn too. next nil means http.DefaultTransport.
func (l *Adaptive) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &limitedTransport{l: l, next: next}
}

type limitedTransport struct {
	l    *Adaptive
	next http.RoundTripper
}

var _ http.RoundTripper = (*limitedTransport)(nil)

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	release, err := t.l.Acquire(req.Context())
	if err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		release(false, 0)
		return nil, err
	}
	retryAfter, hinted := retryAfterHeader(resp.Header, t.l.clock.Now())
	throttled := resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode == http.StatusServiceUnavailable && hinted)
	if resp.Body == nil || resp.Body == http.NoBody {
		release(throttled, retryAfter)
		return resp, nil
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { release(throttled, retryAfter) }}
	return resp, nil
}

// releasingBody gives the limiter slot back at EOF, on a read error, or on Close.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// retryAfterHeader reads the wait a response asks for and whether it asked at all.
func retryAfterHeader(h http.Header, now time.Time) (time.Duration, bool) {
	for _, name := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if ms, err := strconv.ParseInt(h.Get(name), 10, 64); err == nil && ms >= 0 {
			return time.Duration(ms) * time.Millisecond, true
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	// Graph sends fractional seconds ("Retry-After: 2.128" in its throttling guidance).
	if whole, frac, ok := strings.Cut(v, "."); ok && whole != "" && frac != "" && strings.Trim(whole+frac, "0123456789") == "" && len(whole) < 10 {
		if s, err := strconv.ParseFloat(v, 64); err == nil {
			return time.Duration(math.Ceil(s*1000)) * time.Millisecond, true
		}
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}
