package acstest

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Strict principalType: exactly "user" and one resource account spelling, in exact case;
// answers use one canonical spelling. The published OpenAPI enum says "resourceAccount",
// the Learn pages "teamsResourceAccount"; which one the service takes is unconfirmed, so
// both are settings.
func TestStrictPrincipalType(t *testing.T) {
	for _, accept := range []string{"teamsResourceAccount", "resourceAccount"} {
		other := map[string]string{"teamsResourceAccount": "resourceAccount", "resourceAccount": "teamsResourceAccount"}[accept]
		t.Run(accept, func(t *testing.T) {
			srv := New(Options{AcceptResourceAccountAs: accept, AnswerResourceAccountAs: other})
			startForTest(t, srv)
			url := assignmentURL(srv, alice, "2025-06-30")
			tests := []struct {
				body   string
				status int
				answer string
			}{
				{`{"principalType":"` + accept + `"}`, 201, other},
				{`{"principalType":"` + other + `"}`, 400, ""},
				{`{"principalType":"TeamsResourceAccount"}`, 400, ""},
				{`{"principalType":"User","clientIds":["` + appA + `"]}`, 400, ""},
				{`{"principalType":"user","clientIds":["` + appA + `"]}`, 200, "user"},
			}
			for _, tt := range tests {
				a := do(t, srv, "PUT", url, tt.body)
				if a.status != tt.status {
					t.Fatalf("PUT %s: %d %s, want %d", tt.body, a.status, a.body, tt.status)
				}
				if tt.status == 400 {
					if code, _ := errorOf(t, a); code != "InvalidArgument" {
						t.Errorf("PUT %s: code %s", tt.body, code)
					}
					continue
				}
				var got Assignment
				_ = json.Unmarshal(a.body, &got)
				if got.PrincipalType != tt.answer {
					t.Errorf("PUT %s answered principalType %q, want %q", tt.body, got.PrincipalType, tt.answer)
				}
			}
			// A stored value in another spelling is answered canonically too.
			srv.Seed(Assignment{TenantID: tenant, ObjectID: alice, PrincipalType: "TEAMSRESOURCEACCOUNT"})
			var got Assignment
			_ = json.Unmarshal(do(t, srv, "GET", url, "").body, &got)
			if got.PrincipalType != other {
				t.Errorf("GET answered %q, want %q", got.PrincipalType, other)
			}
		})
	}
}

func TestUnauthorizedBodyIsDenied(t *testing.T) {
	srv := NewServer(t)
	r, _ := http.NewRequest("GET", assignmentURL(srv, alice, "2025-06-30"), nil)
	a := send(t, r)
	if code, _ := errorOf(t, a); a.status != 401 || code != "Denied" {
		t.Errorf("%d %s, want 401 Denied", a.status, code)
	}
}

func TestAPIVersionsAreASetting(t *testing.T) {
	srv := New(Options{APIVersions: []string{"2026-01-01"}})
	startForTest(t, srv)
	for v, want := range map[string]int{"2026-01-01": 404, "2025-06-30": 400} {
		a := do(t, srv, "GET", assignmentURL(srv, alice, v), "")
		if a.status != want {
			t.Errorf("api-version %s: %d, want %d", v, a.status, want)
		}
	}
}
