package acs

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

func TestRetriesThrottlingAsAsked(t *testing.T) {
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, nil)
	srv.FailNext(http.StatusTooManyRequests, 40*time.Millisecond)
	srv.FailNext(http.StatusTooManyRequests, 40*time.Millisecond)
	start := time.Now()
	_, created, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{appA}})
	if err != nil || !created {
		t.Fatalf("Put() = %v, %v; want created after two throttled tries", created, err)
	}
	if elapsed := time.Since(start); elapsed < 80*time.Millisecond {
		t.Errorf("Put() took %s, want at least the 2×40ms the service asked for", elapsed)
	}
	want := []int{429, 429, 201}
	if got := statuses(srv); !equalInts(got, want) {
		t.Errorf("statuses seen = %v, want %v", got, want)
	}
}

func TestRetriesUnavailable(t *testing.T) {
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, nil)
	srv.Seed(acstest.Assignment{TenantID: tenant, ObjectID: alice, PrincipalType: "user", ClientIDs: []string{appA}})
	srv.FailNext(http.StatusServiceUnavailable, 0)
	srv.FailNext(http.StatusBadGateway, 0)
	if _, err := c.Get(context.Background(), tenant, alice); err != nil {
		t.Fatalf("Get() error = %v, want success on the third try", err)
	}
	if got, want := statuses(srv), []int{503, 502, 200}; !equalInts(got, want) {
		t.Errorf("statuses seen = %v, want %v", got, want)
	}
}

func TestNoRetryOnBadRequest(t *testing.T) {
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, nil)
	srv.FailNext(http.StatusBadRequest, 0)
	_, err := c.Delete(context.Background(), tenant, alice)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		t.Fatalf("Delete() error = %v, want a 400 *ResponseError", err)
	}
	if n := srv.Counts()[http.MethodDelete]; n != 1 {
		t.Errorf("DELETE sent %d times, want 1", n)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, func(o *Options) { o.Retry.MaxRetries = 2 })
	for range 5 {
		srv.FailNext(http.StatusServiceUnavailable, time.Millisecond)
	}
	_, err := c.Get(context.Background(), tenant, alice)
	if !IsTemporary(err) || RetryAfterOf(err) != time.Millisecond {
		t.Fatalf("Get() error = %v, want temporary with the last Retry-After", err)
	}
	if n := srv.Counts()[http.MethodGet]; n != 3 {
		t.Errorf("GET sent %d times, want 3 (1 + MaxRetries)", n)
	}
}

func TestTransportErrors(t *testing.T) {
	t.Run("a reset is retried", func(t *testing.T) {
		srv := acstest.NewServer(t)
		c := newTestClient(t, srv, nil)
		srv.ResetNext()
		if _, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalResourceAccount}); err != nil {
			t.Fatalf("Put() error = %v, want success after a reset", err)
		}
		if got := statuses(srv); len(got) != 2 || got[0] != 0 || got[1] != http.StatusCreated {
			t.Errorf("statuses seen = %v, want [0 201]", got)
		}
	})
	t.Run("resets beyond the retries are temporary", func(t *testing.T) {
		srv := acstest.NewServer(t)
		c := newTestClient(t, srv, func(o *Options) { o.Retry.MaxRetries = 1 })
		for range 4 {
			srv.ResetNext()
		}
		_, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalResourceAccount})
		var te *TransportError
		if !errors.As(err, &te) || !IsTemporary(err) || IsSystemic(err) {
			t.Fatalf("Put() error = %v (%T), want a temporary *TransportError", err, err)
		}
	})
	t.Run("a stalled try times out and is retried", func(t *testing.T) {
		srv := acstest.NewServer(t)
		c := newTestClient(t, srv, func(o *Options) { o.Retry.TryTimeout = 100 * time.Millisecond })
		srv.StallNext()
		start := time.Now()
		if _, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalResourceAccount}); err != nil {
			t.Fatalf("Put() error = %v, want success on the try after the stall", err)
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("Put() took %s; the try timeout did not cut the stall", elapsed)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		srv := acstest.NewServer(t)
		c := newTestClient(t, srv, func(o *Options) { o.Retry.MaxRetries = 1 })
		srv.Close()
		_, err := c.Get(context.Background(), tenant, alice)
		if !IsTemporary(err) || IsNotFound(err) {
			t.Fatalf("Get() error = %v, want temporary, never not-found", err)
		}
	})
}

func TestCancelDuringBackoff(t *testing.T) {
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, nil)
	srv.FailNext(http.StatusTooManyRequests, 30*time.Second) // within MaxThrottleWait: the client sleeps
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // cancel once the throttled answer has gone out
		for len(srv.Requests()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	_, err := c.Get(ctx, tenant, alice)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("Get() returned after %s; cancellation did not cut the backoff", elapsed)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Get() error = %v, want the context's cancellation", err)
	}
	if IsTemporary(err) || IsNotFound(err) || IsSystemic(err) {
		t.Errorf("a caller's cancellation was classified as the service's fault: %v", err)
	}
	if n := srv.Counts()[http.MethodGet]; n != 1 {
		t.Errorf("GET sent %d times, want 1", n)
	}
}

func TestThrottleBeyondMaxWait(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := acstest.NewServer(t)
			c := newTestClient(t, srv, func(o *Options) { o.MaxThrottleWait = time.Second })
			srv.FailNext(status, 5*time.Minute)
			start := time.Now()
			_, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalResourceAccount})
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("Put() took %s, want an immediate answer", elapsed)
			}
			var te *ThrottledError
			if !errors.As(err, &te) {
				t.Fatalf("Put() error = %v (%T), want a *ThrottledError", err, err)
			}
			if te.Wait != 5*time.Minute || RetryAfterOf(err) != 5*time.Minute || !IsTemporary(err) || !IsThrottled(err) {
				t.Errorf("ThrottledError = %+v (temporary %v), want a temporary throttle carrying 5m", te, IsTemporary(err))
			}
			if te.Response.StatusCode != status || te.Response.CorrelationID == "" {
				t.Errorf("ThrottledError.Response = %+v, want the %d answer with its ms-cv", te.Response, status)
			}
			if n := srv.Counts()[http.MethodPut]; n != 1 {
				t.Errorf("PUT sent %d times, want 1", n)
			}
		})
	}
}

func TestEveryTryIsSignedAfresh(t *testing.T) {
	base := time.Now().Add(-5 * time.Minute)
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, func(o *Options) { o.Now = steppingClock(base, 2*time.Minute) })
	srv.FailNext(http.StatusServiceUnavailable, 0)
	srv.FailNext(http.StatusInternalServerError, 0)
	if _, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{appA}}); err != nil {
		t.Fatalf("Put() error = %v, want success on the third, re-signed try", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, want := range []time.Time{base, base.Add(2 * time.Minute), base.Add(4 * time.Minute)} {
		if got := reqs[i].Date; got != want.UTC().Format(http.TimeFormat) {
			t.Errorf("try %d x-ms-date = %q, want %q", i+1, got, want.UTC().Format(http.TimeFormat))
		}
	}
	if reqs[2].Status != http.StatusCreated {
		t.Errorf("last try status = %d, want 201 (its fresh signature verified)", reqs[2].Status)
	}
}

func TestRandomFaultsConverge(t *testing.T) {
	srv := acstest.NewServer(t, func(o *acstest.Options) { o.ThrottleRetryAfter = time.Millisecond })
	srv.SetFaultRate(0.3, 42, acstest.FaultThrottle, acstest.FaultInternal, acstest.FaultUnavailable, acstest.FaultReset)
	c := newTestClient(t, srv, func(o *Options) { o.Retry.MaxRetries = 10 })
	ids := []string{alice, bob, appA, appB}
	for _, id := range ids {
		if _, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: id, PrincipalType: PrincipalResourceAccount}); err != nil {
			t.Fatalf("Put(%s) error = %v", id, err)
		}
	}
	if n := len(srv.Assignments()); n != len(ids) {
		t.Errorf("%d assignments stored, want %d", n, len(ids))
	}
}

func statuses(srv *acstest.Server) []int {
	var out []int
	for _, r := range srv.Requests() {
		out = append(out, r.Status)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
