package graph_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
)

// Graph's Retry-After may be fractional ("2.128" in the throttling guidance): the retry
// waits what it says, to the millisecond, neither truncated to whole seconds (kiota-http-go's
// RetryHandler turns 0.4 into no wait at all) nor rounded up to the next second.
func TestRetryAfterFractionIsHonoured(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0.4")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"code":"TooManyRequests","message":"Please retry again later.","innerError":{"code":"429","status":"429"}}}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"` + adeleID + `","userPrincipalName":"a@b","accountEnabled":true,"userType":"Member","department":null,"assignedLicenses":[],"assignedPlans":[]}`))
	}))
	defer srv.Close()
	c, err := graph.NewClient(&tokenCred{token: "t"}, &graph.Options{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.User(context.Background(), adeleID); err != nil {
		t.Fatal(err)
	}
	waited := time.Since(start)
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2", calls.Load())
	}
	if waited < 400*time.Millisecond || waited > 950*time.Millisecond {
		t.Errorf("retried after %v; Retry-After asked for 0.4s", waited)
	}
}

// A Retry-After longer than the client waits in total ends the call at once with the
// wait reported, so the caller can reschedule instead of holding its work for minutes.
func TestLongRetryAfterIsReportedNotWaited(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c, err := graph.NewClient(&tokenCred{token: "t"}, &graph.Options{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.User(context.Background(), adeleID)
	if time.Since(start) > 5*time.Second {
		t.Errorf("waited %v", time.Since(start))
	}
	if got := retryAfterOf(err); got != 600*time.Second || classify(err) != (behaviour{temporary: true}) {
		t.Errorf("err %v RetryAfter %v, want temporary with 600s", err, got)
	}
	if c.Calls() != 1 {
		t.Errorf("%d calls, want 1", c.Calls())
	}
}

// A POST is retried with its body sent again in full.
func TestRetriedPostResendsItsBody(t *testing.T) {
	t.Parallel()
	c, srv := newClient(t, testDirectory(t), graph.Options{})
	srv.FailNext(http.StatusServiceUnavailable, 0)
	srv.FailNext(http.StatusTooManyRequests, 0)
	groups, err := c.MemberOf(context.Background(), adeleID, []string{scope, nested})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0] != scope {
		t.Errorf("MemberOf = %v, want [%s]", groups, scope)
	}
	if got := srv.Calls("POST /v1.0/users/{id}/checkMemberGroups"); got != 3 {
		t.Errorf("%d calls, want 3", got)
	}
}
