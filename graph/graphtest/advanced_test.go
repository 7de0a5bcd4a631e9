package graphtest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

var eventual = []string{"ConsistencyLevel", "eventual"}

// aad-advanced-queries: an OData cast on a transitive members list needs the advanced query
// parameters (ConsistencyLevel: eventual and $count); strict mode, the default, enforces it.
func TestTransitiveMembersCastNeedsAdvancedQuery(t *testing.T) {
	t.Parallel()
	members := "/v1.0/groups/" + graphtest.ScopeGroupID + "/transitiveMembers/microsoft.graph.user?$select=id"
	tests := []struct {
		name    string
		lenient bool
		query   string
		hdr     []string
		status  int
		count   bool
	}{
		{"strict, both", false, "&$count=true", eventual, 200, true},
		{"strict, no header", false, "&$count=true", nil, 400, false},
		{"strict, no $count", false, "", eventual, 400, false},
		{"lenient, neither", true, "", nil, 200, false},
		{"lenient, $count=true without the header is ignored", true, "&$count=true", nil, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := sample(t, func(o *graphtest.Options) { o.LenientAdvancedQueries = tt.lenient })
			status, _, m := call(t, "GET", srv.URL()+members+tt.query, "", tt.hdr...)
			if status != tt.status {
				t.Fatalf("status %d %v, want %d", status, m, tt.status)
			}
			if status == 400 && errorCode(m) != "Request_UnsupportedQuery" {
				t.Errorf("code %q, want Request_UnsupportedQuery", errorCode(m))
			}
			if _, has := m["@odata.count"]; status == 200 && has != tt.count {
				t.Errorf("@odata.count present %v, want %v (%v)", has, tt.count, m)
			}
		})
	}
}

// "If the ConsistencyLevel header is not specified, the request returns an error when the
// $count URL segment is used or silently ignores the $count query parameter."
func TestCountWithoutConsistencyLevel(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	_, _, m := call(t, "GET", srv.URL()+"/v1.0/users?$select=id&$count=true", "")
	if _, has := m["@odata.count"]; has || len(m["value"].([]any)) == 0 {
		t.Errorf("users?$count=true without the header: %v, want users and no @odata.count", m)
	}
	_, _, m = call(t, "GET", srv.URL()+"/v1.0/users?$select=id&$count=true", "", eventual...)
	if m["@odata.count"] != float64(28) {
		t.Errorf("with the header: @odata.count %v, want 28", m["@odata.count"])
	}
	for _, path := range []string{"/v1.0/users/$count", "/v1.0/groups/" + graphtest.ScopeGroupID + "/transitiveMembers/microsoft.graph.user/$count"} {
		if status, _, m := call(t, "GET", srv.URL()+path, ""); status != 400 || errorCode(m) != "Request_BadRequest" {
			t.Errorf("%s without the header: %d %q, want 400 Request_BadRequest", path, status, errorCode(m))
		}
		req, _ := http.NewRequest("GET", srv.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer t")
		req.Header.Set("ConsistencyLevel", "eventual")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || strings.TrimSpace(string(b)) == "" || strings.TrimSpace(string(b)) == "0" {
			t.Errorf("%s with the header: %d %q %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
}

// With AdvancedQueryLag, advanced-query listings are served from an older copy of the
// directory while direct reads see the change at once.
func TestAdvancedQueryLag(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	d, err := graphtest.LoadDirectoryFile(sampleFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := graphtest.NewServer(t, d, func(o *graphtest.Options) {
		o.Clock = func() time.Time { return now }
		o.AdvancedQueryLag = time.Minute
	})
	const outsider = "6b881677-6b5a-4b73-a944-72d1a7d32946" // lynne.robbins, not in the scope group
	members := srv.URL() + "/v1.0/groups/" + graphtest.ScopeGroupID + "/transitiveMembers/microsoft.graph.user?$select=id&$count=true"
	inListing := func() bool {
		_, _, m := call(t, "GET", members, "", eventual...)
		for _, v := range m["value"].([]any) {
			if v.(map[string]any)["id"] == outsider {
				return true
			}
		}
		return false
	}
	direct := func() bool {
		_, _, m := call(t, "POST", srv.URL()+"/v1.0/users/"+outsider+"/checkMemberGroups", `{"groupIds":["`+graphtest.ScopeGroupID+`"]}`)
		return len(m["value"].([]any)) == 1
	}
	srv.SnapshotListings()
	must(t, d.AddMember(graphtest.ScopeGroupID, outsider))
	if !direct() || inListing() {
		t.Fatalf("right after the change: direct %v, listing %v; want true, false", direct(), inListing())
	}
	now = now.Add(59 * time.Second)
	if inListing() {
		t.Fatal("the listing caught up before the lag passed")
	}
	now = now.Add(time.Second)
	if !inListing() {
		t.Fatal("the listing has not caught up once the lag passed")
	}
	// Listings without the advanced query header are direct reads: never lagged.
	must(t, d.RemoveMember(graphtest.ScopeGroupID, outsider))
	_, _, m := call(t, "GET", srv.URL()+"/v1.0/users?$select=id", "")
	if len(m["value"].([]any)) != 28 {
		t.Errorf("plain listing: %d users", len(m["value"].([]any)))
	}
	if !inListing() {
		t.Error("the advanced listing dropped the member before the lag passed")
	}
}
