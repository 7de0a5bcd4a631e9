package acstest

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestFailNextIsFIFO(t *testing.T) {
	srv := NewServer(t)
	srv.FailNext(http.StatusTooManyRequests, 1500*time.Millisecond)
	srv.FailNext(http.StatusServiceUnavailable, 0)
	srv.FailNext(http.StatusTooManyRequests, 3*time.Second)
	url := assignmentURL(srv, alice, "2025-06-30")
	tests := []struct {
		status            int
		code              string
		retryAfter, retMS string
	}{
		{429, "TooManyRequests", "2", "1500"},
		{503, "ServiceUnavailable", "", ""},
		{429, "TooManyRequests", "3", ""},
		{404, "NotFound", "", ""}, // queue empty: served normally
	}
	for i, tt := range tests {
		a := do(t, srv, "GET", url, "")
		code, _ := errorOf(t, a)
		if a.status != tt.status || code != tt.code {
			t.Errorf("request %d: %d %s, want %d %s", i+1, a.status, code, tt.status, tt.code)
		}
		if got := a.header.Get("Retry-After"); got != tt.retryAfter {
			t.Errorf("request %d: Retry-After = %q, want %q", i+1, got, tt.retryAfter)
		}
		if got := a.header.Get("retry-after-ms"); got != tt.retMS {
			t.Errorf("request %d: retry-after-ms = %q, want %q", i+1, got, tt.retMS)
		}
		if a.header.Get("MS-CV") == "" {
			t.Errorf("request %d: no ms-cv", i+1)
		}
	}
}

// faultSequence sends n unsigned requests (faults come before authentication) and returns
// the statuses; 0 stands for a reset connection.
func faultSequence(t *testing.T, seed int64, n int) []int {
	srv := NewServer(t)
	srv.SetFaultRate(0.5, seed, FaultThrottle, FaultInternal, FaultUnavailable, FaultReset)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var out []int
	for range n {
		resp, err := client.Get(assignmentURL(srv, alice, "2025-06-30"))
		if err != nil {
			out = append(out, 0)
			continue
		}
		resp.Body.Close()
		out = append(out, resp.StatusCode)
	}
	return out
}

func TestFaultRateIsSeeded(t *testing.T) {
	a, b := faultSequence(t, 7, 40), faultSequence(t, 7, 40)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed gave different faults:\n%v\n%v", a, b)
	}
	if c := faultSequence(t, 8, 40); slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave the same 40 answers: %v", a)
	}
	seen := map[int]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range []int{0, 401, 429, 500, 503} {
		if seen[s] == 0 {
			t.Errorf("no %d among %v", s, a)
		}
	}
	if n := seen[401]; n < 10 || n > 30 {
		t.Errorf("%d of 40 requests passed at rate 0.5", n)
	}
}

func TestFaultRateZeroTurnsFaultsOff(t *testing.T) {
	srv := NewServer(t)
	srv.SetFaultRate(1, 1)
	if a := do(t, srv, "GET", assignmentURL(srv, alice, "2025-06-30"), ""); a.status < 429 {
		t.Fatalf("status = %d at rate 1, want a fault", a.status)
	}
	srv.SetFaultRate(0, 1)
	for range 10 {
		if a := do(t, srv, "GET", assignmentURL(srv, alice, "2025-06-30"), ""); a.status != 404 {
			t.Fatalf("status = %d at rate 0, want 404", a.status)
		}
	}
}

func TestResetAndStall(t *testing.T) {
	srv := NewServer(t)
	url := assignmentURL(srv, alice, "2025-06-30")
	srv.ResetNext()
	if _, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(url); err == nil {
		t.Error("reset: GET succeeded, want a connection error")
	}

	srv.StallNext()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stall: error = %v, want the client's deadline", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Requests()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the stalled handler logs once it sees the hang-up
	}
	if got := srv.Requests(); len(got) != 2 || got[0].Status != 0 || got[1].Status != 0 {
		t.Errorf("Requests() = %+v, want two unanswered requests", got)
	}
}

func TestLatency(t *testing.T) {
	srv := NewServer(t)
	srv.SetLatency(60 * time.Millisecond)
	start := time.Now()
	do(t, srv, "GET", assignmentURL(srv, alice, "2025-06-30"), "")
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("answer took %s, want at least the 60ms latency", d)
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := NewServer(t)
	srv.SetFaultRate(0.2, 3)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				r := newSigned(t, srv.AccessKey(), "PUT", assignmentURL(srv, alice, "2025-06-30"), `{"principalType":"teamsResourceAccount"}`, time.Now())
				if resp, err := http.DefaultClient.Do(r); err == nil {
					resp.Body.Close()
				}
				srv.FailNext(500, 0)
				_ = srv.Assignments()
				_ = srv.Counts()
				if i == 0 {
					srv.SetLatency(0)
				}
			}
		}()
	}
	wg.Wait()
	if n := srv.Counts()["PUT"]; n != 80 {
		t.Errorf("Counts()[PUT] = %d, want 80", n)
	}
}
