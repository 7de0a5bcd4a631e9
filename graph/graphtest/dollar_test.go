package graphtest_test

import (
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// user-get: "/users/$x@y.com fails with a 400 Bad Request ... enclose the
// userPrincipalName in parentheses and single quotes: /users('$x@y.com')".
func TestDollarUPN(t *testing.T) {
	t.Parallel()
	d := graphtest.NewDirectory(graphtest.SampleTenantID)
	must(t, d.AddUser(graphtest.UserRecord{ID: "1b7f3c2a-4d5e-4f60-8a7b-9c0d1e2f3a4b", UserPrincipalName: "$adele@contoso.example", AccountEnabled: true}))
	must(t, d.AddUser(graphtest.UserRecord{ID: "2c8f3c2a-4d5e-4f60-8a7b-9c0d1e2f3a4b", UserPrincipalName: "o'brien@contoso.example", AccountEnabled: true}))
	srv := graphtest.NewServer(t, d)
	tests := []struct {
		name, path string
		status     int
		id         string
	}{
		{"slash form is 400", "/v1.0/users/$adele@contoso.example", 400, ""},
		{"escaped slash form is 400 too", "/v1.0/users/%24adele@contoso.example", 400, ""},
		{"quoted form works", "/v1.0/users('$adele@contoso.example')?$select=id", 200, "1b7f3c2a-4d5e-4f60-8a7b-9c0d1e2f3a4b"},
		{"quoted form escaped", "/v1.0/users('%24adele%40contoso.example')", 200, "1b7f3c2a-4d5e-4f60-8a7b-9c0d1e2f3a4b"},
		{"quoted form, doubled quote", "/v1.0/users('o''brien@contoso.example')", 200, "2c8f3c2a-4d5e-4f60-8a7b-9c0d1e2f3a4b"},
		{"quoted form of an unknown user", "/v1.0/users('$nobody@contoso.example')", 404, ""},
		{"quoted form, unbalanced", "/v1.0/users('$adele@contoso.example", 400, ""},
		{"quoted checkMemberGroups", "/v1.0/users('$adele@contoso.example')/checkMemberGroups", 200, ""},
	}
	for _, tt := range tests {
		method, body := "GET", ""
		if tt.name == "quoted checkMemberGroups" {
			method, body = "POST", `{"groupIds":["`+graphtest.ScopeGroupID+`"]}`
		}
		status, _, m := call(t, method, srv.URL()+tt.path, body)
		if status != tt.status || (tt.id != "" && m["id"] != tt.id) {
			t.Errorf("%s: %d %v, want %d id %q", tt.name, status, m, tt.status, tt.id)
		}
	}
	if got := srv.Calls("GET /v1.0/users/{id}"); got != 6 {
		t.Errorf("%d calls counted under GET /v1.0/users/{id}, want 6", got)
	}
}
