package acstest

import (
	"net/http"
	"testing"
	"time"
)

func TestFailOnFailsOnlyThatVerb(t *testing.T) {
	srv := NewServer(t)
	srv.Seed(Assignment{ObjectID: alice, TenantID: tenant, PrincipalType: "user", ClientIDs: []string{appA}})
	srv.FailOn("PUT", http.StatusForbidden, 0)
	url := assignmentURL(srv, alice, "2025-06-30")
	userBody := `{"principalType":"user","clientIds":["` + appA + `"]}`
	for i := range 3 {
		a := do(t, srv, "PUT", url, userBody)
		if code, _ := errorOf(t, a); a.status != 403 || code != "Forbidden" {
			t.Fatalf("PUT %d: %d %s, want 403 Forbidden until cleared", i, a.status, code)
		}
		if a := do(t, srv, "GET", url, ""); a.status != 200 {
			t.Fatalf("GET %d: %d, want 200 (only PUT fails)", i, a.status)
		}
	}
	// Authentication still comes first: an unsigned PUT is 401, not the scripted 403.
	r, _ := http.NewRequest("PUT", url, ioNop(userBody))
	if a := send(t, r); a.status != 401 {
		t.Errorf("unsigned PUT: %d, want 401", a.status)
	}
	srv.ClearFaults()
	if a := do(t, srv, "PUT", url, userBody); a.status != 200 {
		t.Errorf("PUT after ClearFaults: %d, want 200", a.status)
	}
}

func TestFailOnCountsDownAndThrottles(t *testing.T) {
	srv := New(Options{ThrottleRetryAfter: 1500 * time.Millisecond})
	startForTest(t, srv)
	srv.FailOn("DELETE", http.StatusTooManyRequests, 1)
	url := assignmentURL(srv, alice, "2025-06-30")
	a := do(t, srv, "DELETE", url, "")
	if a.status != 429 || a.header.Get("Retry-After") != "2" || a.header.Get("retry-after-ms") != "1500" {
		t.Errorf("first DELETE: %d Retry-After %q retry-after-ms %q, want 429 2 1500",
			a.status, a.header.Get("Retry-After"), a.header.Get("retry-after-ms"))
	}
	if a := do(t, srv, "DELETE", url, ""); a.status != 404 {
		t.Errorf("second DELETE: %d, want 404 (served)", a.status)
	}
}

func TestFailOnRejectsOtherVerbs(t *testing.T) {
	srv := NewServer(t)
	for _, m := range []string{"put", "PATCH", "POST"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("FailOn(%q): no panic", m)
				}
			}()
			srv.FailOn(m, 500, 1)
		}()
	}
}

func startForTest(t *testing.T, srv *Server) {
	t.Helper()
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
}
