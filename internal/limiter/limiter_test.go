package limiter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
)

// limiterFull reports whether no slot can be taken right now (Acquire with an ended
// context fails only when it would have to wait).
func limiterFull(l *Adaptive) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release, err := l.Acquire(ctx)
	if err == nil {
		release(false, 0)
		return false
	}
	return true
}

// acquireN takes n slots and returns their release functions.
func acquireN(t *testing.T, l *Adaptive, n int) []func(bool, time.Duration) {
	t.Helper()
	var rs []func(bool, time.Duration)
	for range n {
		r, err := l.Acquire(t.Context())
		if err != nil {
			t.Fatalf("Acquire: %v", err)
		}
		rs = append(rs, r)
	}
	return rs
}

func TestAdaptiveLimiterStartsAtMaxAndBlocksBeyond(t *testing.T) {
	l := New(2, 8)
	l.clock = clk.NewFake()
	rs := acquireN(t, l, 8)
	if !limiterFull(l) {
		t.Fatalf("a 9th slot was granted with a limit of 8")
	}
	// A waiter is woken by a release.
	got := make(chan error, 1)
	go func() {
		r, err := l.Acquire(t.Context())
		if err == nil {
			r(false, 0)
		}
		got <- err
	}()
	rs[0](false, 0)
	if err := <-got; err != nil {
		t.Fatalf("waiting Acquire: %v", err)
	}
	rs[0](false, 0) // a second release of the same slot is ignored
	for _, r := range rs[1:] {
		r(false, 0)
	}
	if st := l.Stats(); st.Current != 8 || st.Min != 8 || st.Max != 8 {
		t.Errorf("stats %+v, want 8/8/8", st)
	}
}

func TestAdaptiveLimiterAIMD(t *testing.T) {
	clock := clk.NewFake()
	l := New(2, 8)
	l.clock = clock

	// A burst of 8 calls, all throttled: the limit halves once, not eight times.
	rs := acquireN(t, l, 8)
	rs[0](true, 3*time.Second)
	for _, r := range rs[1:] {
		r(true, 3*time.Second)
	}
	if st := l.Stats(); st.Current != 4 || st.Throttles != 8 {
		t.Fatalf("after one burst: %+v, want limit 4 and 8 throttles", st)
	}

	// Retry-After pauses every acquisition, even with free slots.
	if !limiterFull(l) {
		t.Fatalf("a slot was granted during the Retry-After pause")
	}
	clock.Advance(3 * time.Second)
	if limiterFull(l) {
		t.Fatalf("still paused after Retry-After")
	}

	// A throttle of a later call halves again, down to the floor and no further.
	for _, want := range []int{2, 2} {
		acquireN(t, l, 1)[0](true, 0)
		if got := l.Stats().Current; got != want {
			t.Fatalf("limit %d after another throttle, want %d", got, want)
		}
	}

	// Recovery: one more per window of as many successes as the limit.
	for _, want := range []int{3, 4, 5} {
		for range want - 1 {
			acquireN(t, l, 1)[0](false, 0)
		}
		if got := l.Stats().Current; got != want {
			t.Fatalf("limit %d after a window of successes, want %d", got, want)
		}
	}
	if st := l.Stats(); st.Min != 2 || st.Max != 8 {
		t.Errorf("recorded min %d max %d, want 2 and 8", st.Min, st.Max)
	}
}

func TestAdaptiveLimiterNeverExceedsMax(t *testing.T) {
	l := New(1, 3)
	for range 20 {
		acquireN(t, l, 1)[0](false, 0)
	}
	if st := l.Stats(); st.Current != 3 || st.Max != 3 {
		t.Errorf("stats %+v, want the limit capped at 3", st)
	}
}

func TestAdaptiveLimiterAcquireEndsWithContext(t *testing.T) {
	l := New(1, 1)
	l.clock = clk.NewFake()
	acquireN(t, l, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(ctx); err == nil {
		t.Fatalf("Acquire succeeded past the limit")
	}
}

func TestLimiterTransportThrottlesOn429(t *testing.T) {
	var calls, inflight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()

	clock := clk.NewFake()
	l := New(1, 4)
	l.clock = clock
	client := &http.Client{Transport: l.Transport(srv.Client().Transport)}

	get := func() int {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusTooManyRequests {
		t.Fatalf("first status %d, want 429", got)
	}
	if st := l.Stats(); st.Current != 2 || st.Throttles != 1 {
		t.Fatalf("after a 429: %+v, want limit 2 and 1 throttle", st)
	}

	// The next request waits for the 2 s Retry-After on the limiter's clock.
	done := make(chan int, 1)
	go func() { done <- get() }()
	clock.WaitForWaiters(t, 1)
	select {
	case <-done:
		t.Fatalf("request sent during the Retry-After pause")
	default:
	}
	clock.Advance(2 * time.Second)
	if got := <-done; got != http.StatusOK {
		t.Fatalf("status after the pause %d, want 200", got)
	}

	// Concurrent requests never exceed the (recovering) limit, and every slot comes back.
	results := make(chan int, 12)
	for range 12 {
		go func() { results <- get() }()
	}
	for range 12 {
		if got := <-results; got != http.StatusOK {
			t.Errorf("status %d, want 200", got)
		}
	}
	if p := peak.Load(); p > 4 {
		t.Errorf("%d requests in flight at the server, want at most 4", p)
	}
	if limiterFull(l) {
		t.Errorf("slots not given back after the bodies were read and closed")
	}
}

func TestLimiterTransportReleasesOnTransportError(t *testing.T) {
	l := New(1, 1)
	failing := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, io.ErrUnexpectedEOF })
	client := &http.Client{Transport: l.Transport(failing)}
	for range 3 { // with a limit of 1, a leaked slot would block the second call
		if _, err := client.Get("http://127.0.0.1:1/"); err == nil {
			t.Fatalf("GET succeeded through a failing transport")
		}
	}
	if st := l.Stats(); st.Throttles != 0 {
		t.Errorf("transport errors counted as throttles: %+v", st)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		header   http.Header
		want     time.Duration
		wantHint bool
	}{
		{"seconds", http.Header{"Retry-After": {"7"}}, 7 * time.Second, true},
		{"fractional seconds, as Graph's throttling guidance shows", http.Header{"Retry-After": {"2.128"}}, 2128 * time.Millisecond, true},
		{"http date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second, true},
		{"date in the past", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0, true},
		{"retry-after-ms wins", http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"9"}}, 1500 * time.Millisecond, true},
		{"x-ms-retry-after-ms", http.Header{"X-Ms-Retry-After-Ms": {"250"}}, 250 * time.Millisecond, true},
		{"absent", http.Header{}, 0, false},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, hinted := retryAfterHeader(tt.header, now)
			if got != tt.want || hinted != tt.wantHint {
				t.Errorf("got %v %v, want %v %v", got, hinted, tt.want, tt.wantHint)
			}
		})
	}
}

func TestLimiterTransportClassifiesStatuses(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		retryAfter    string
		wantThrottled bool
	}{
		{"429 without Retry-After", 429, "", true},
		{"503 with Retry-After", 503, "1", true},
		{"503 without Retry-After", 503, "", false},
		{"500 with Retry-After", 500, "1", false},
		{"200", 200, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(1, 4)
			l.clock = clk.NewFake()
			rt := roundTripFunc(func(*http.Request) (*http.Response, error) {
				h := http.Header{}
				if tt.retryAfter != "" {
					h.Set("Retry-After", tt.retryAfter)
				}
				return &http.Response{StatusCode: tt.status, Header: h, Body: http.NoBody}, nil
			})
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://127.0.0.1/", nil)
			if _, err := l.Transport(rt).RoundTrip(req); err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			if got := l.Stats().Throttles == 1; got != tt.wantThrottled {
				t.Errorf("throttled = %v, want %v", got, tt.wantThrottled)
			}
		})
	}
}
