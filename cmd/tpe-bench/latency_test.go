package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestGraphCostFollowsThePublishedTable(t *testing.T) {
	const user = "0f5c8a1e-2b3d-4e6f-8a9b-1c2d3e4f5a6b"
	tests := []struct {
		name, method, target, body string
		want                       int
	}{
		{"a user with $select costs 1 (base 1, never below 1)", "GET", "/v1.0/users/" + user + "?$select=id,accountEnabled", "", 1},
		{"a user without $select costs 1", "GET", "/v1.0/users/" + user, "", 1},
		{"checkMemberGroups costs 4 (me/ applies to users/{id}/)", "POST", "/v1.0/users/" + user + "/checkMemberGroups", `{"groupIds":["g"]}`, 4},
		{"getMemberGroups costs 2", "POST", "/v1.0/users/" + user + "/getMemberGroups", `{}`, 2},
		{"transitiveMemberOf with $select costs 1", "GET", "/v1.0/users/" + user + "/transitiveMemberOf?$select=id", "", 1},
		{"a users page with $select costs 1", "GET", "/v1.0/users?$select=id&$top=999", "", 1},
		{"a users page costs 2", "GET", "/v1.0/users", "", 2},
		{"transitiveMembers with a cast and $select costs 4", "GET", "/v1.0/groups/g/transitiveMembers/microsoft.graph.user?$select=id", "", 4},
		{"$top under 20 takes 1 off", "GET", "/v1.0/groups/g/members?$top=5", "", 2},
		{"$expand adds 1", "GET", "/v1.0/users/" + user + "?$expand=manager", "", 2},
		{"a batch costs what its requests cost", "POST", "/v1.0/$batch",
			`{"requests":[{"id":"1","method":"GET","url":"/users/` + user + `?$select=id"},` +
				`{"id":"2","method":"POST","url":"/users/` + user + `/checkMemberGroups"}]}`, 5},
		{"a batch that is not JSON costs 1", "POST", "/v1.0/$batch", `{`, 1},
		{"the worker's combined read costs 2", "POST", "/v1.0/$batch",
			`{"requests":[{"id":"user","method":"GET","url":"/users/` + user + `?$select=id,accountEnabled"},` +
				`{"id":"member","method":"GET","url":"/users/` + user + `/transitiveMemberOf?$select=id&$top=999"}]}`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://graph.test"+tt.target, strings.NewReader(tt.body))
			if got := graphRequestCost(r, []byte(tt.body)); got != tt.want {
				t.Errorf("cost of %s %s = %d, want %d", tt.method, tt.target, got, tt.want)
			}
			reqs, ok := batchRequests([]byte(tt.body))
			want := 1
			if ok && len(reqs) > 0 && strings.HasSuffix(tt.target, "$batch") {
				want = len(reqs)
			}
			if got := graphRequestCount(r, []byte(tt.body)); got != want {
				t.Errorf("requests in %s %s = %d, want %d", tt.method, tt.target, got, want)
			}
		})
	}
}

func TestPrincipalOfARequest(t *testing.T) {
	const user = "0F5C8A1E-2B3D-4E6F-8A9B-1C2D3E4F5A6B"
	tests := []struct {
		target, body string
		graph        bool
		want         string
	}{
		{"/v1.0/users/" + user + "?$select=id", "", true, strings.ToLower(user)},
		{"/v1.0/users/" + user + "/checkMemberGroups", "{}", true, strings.ToLower(user)},
		{"/v1.0/$batch", `{"requests":[{"id":"1","method":"GET","url":"/users/` + user + `"}]}`, true, strings.ToLower(user)},
		{"/access/teamsExtension/tenants/t/assignments/" + user + "?api-version=2025-06-30", "", false, strings.ToLower(user)},
		{"/v1.0/subscriptions", "", true, ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "http://x.test"+tt.target, nil)
		graph, id := principalOf(r, []byte(tt.body))
		if graph != tt.graph || id != tt.want {
			t.Errorf("%s: graph %v, principal %q; want %v, %q", tt.target, graph, id, tt.graph, tt.want)
		}
	}
}

func TestCriticalPathIsTheLongestChainOfCallsOneAfterAnother(t *testing.T) {
	const g, a = 50 * time.Millisecond, 30 * time.Millisecond
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	graphCall := func(from, to int) call { return call{graph: true, start: at(from), end: at(to)} }
	acsCall := func(from, to int) call { return call{start: at(from), end: at(to)} }
	tests := []struct {
		name      string
		calls     []call
		wantCalls int
		wantBound time.Duration
	}{
		{"none", nil, 0, 0},
		{"one after another", []call{graphCall(0, 50), graphCall(51, 101), acsCall(102, 132), acsCall(133, 163)}, 4, 2*g + 2*a},
		{"user and assignment side by side, then scope, then write",
			[]call{graphCall(0, 50), acsCall(1, 31), graphCall(51, 101), acsCall(102, 132)}, 3, 2*g + a},
		{"the longer of two overlapping calls counts", []call{acsCall(0, 30), graphCall(0, 50)}, 1, g},
		{"out of order in the list", []call{acsCall(102, 132), graphCall(0, 50), graphCall(51, 101)}, 3, 2*g + a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, bound := criticalPath(tt.calls, g, a)
			if n != tt.wantCalls || bound != tt.wantBound {
				t.Errorf("critical path = %d calls, %s; want %d, %s", n, bound, tt.wantCalls, tt.wantBound)
			}
		})
	}
}

func TestPercentileIsTheNearestRank(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 5}, {0.95, 10}, {0.99, 10}, {0.1, 1}, {1, 10}} {
		if got := percentile(sorted(ds), tt.p); got != tt.want {
			t.Errorf("p%v = %d, want %d", tt.p*100, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("p50 of nothing = %d, want 0", got)
	}
}
