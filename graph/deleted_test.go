package graph_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// A soft-deleted user is found by the UPN it had, through deletedItems with an advanced
// endswith filter, and matched exactly on Graph's "<id without dashes><upn>" form.
func TestDeletedUser(t *testing.T) {
	t.Parallel()
	dir := testDirectory(t)
	// A live user whose UPN ends like the deleted one's must never be taken for her, nor a
	// deleted user whose UPN merely ends the same.
	const lookalikeID = "d1e2f3a4-0000-4000-8000-00000000000d"
	must(t, dir.AddUser(graphtest.UserRecord{ID: lookalikeID, UserPrincipalName: "xbianca.pisani@contoso.example", AccountEnabled: true}))
	must(t, dir.DeleteUser(lookalikeID))
	c, srv := newClient(t, dir, graph.Options{})
	ctx := context.Background()

	u, err := c.DeletedUser(ctx, "Bianca.Pisani@contoso.example")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != goneID || !u.DeletedAt.Equal(deletedAt) || !u.AccountEnabled || len(u.Plans) != 1 {
		t.Errorf("DeletedUser() = %+v, want %s deleted at %s with its properties", u, goneID, deletedAt)
	}
	if want := strings.ReplaceAll(goneID, "-", "") + "bianca.pisani@contoso.example"; u.UPN != want {
		t.Errorf("UPN = %q, want Graph's prefixed %q", u.UPN, want)
	}
	var req *graphtest.Request
	for _, r := range srv.Requests() {
		if r.Route == "GET /v1.0/directory/deletedItems/microsoft.graph.user" {
			req = &r
		}
	}
	switch {
	case req == nil:
		t.Fatal("no deletedItems request")
	case !strings.Contains(req.Query, "endswith") || req.Header.Get("ConsistencyLevel") != "eventual" || !strings.Contains(req.Query, "count=true"):
		t.Errorf("request %s with ConsistencyLevel %q: want an advanced endswith query", req.Query, req.Header.Get("ConsistencyLevel"))
	}

	for _, upn := range []string{"adele.vance@contoso.example", "nobody@contoso.example", "pisani@contoso.example"} {
		_, err := c.DeletedUser(ctx, upn)
		var nf interface{ NotFound() bool }
		if !asNotFound(err, &nf) || !nf.NotFound() {
			t.Errorf("DeletedUser(%s) error = %v, want not found", upn, err)
		}
	}
}

// A UPN with a quote reaches the filter as an OData literal, and a Graph failure is never
// not found.
func TestDeletedUserQuotingAndFailures(t *testing.T) {
	t.Parallel()
	dir := testDirectory(t)
	const id = "0a0b0c0d-0000-4000-8000-0000000000aa"
	must(t, dir.AddUser(graphtest.UserRecord{ID: id, UserPrincipalName: "o'brien@contoso.example", AccountEnabled: true}))
	must(t, dir.DeleteUser(id))
	c, srv := newClient(t, dir, graph.Options{})
	ctx := context.Background()
	if u, err := c.DeletedUser(ctx, "o'brien@contoso.example"); err != nil || u.ID != id {
		t.Fatalf("DeletedUser(o'brien) = %s, %v; want %s", u.ID, err, id)
	}
	srv.FailNext(http.StatusForbidden, 0)
	_, err := c.DeletedUser(ctx, "o'brien@contoso.example")
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.NotFound() || !ge.Systemic() {
		t.Errorf("DeletedUser() under a 403 = %v, want a systemic error", err)
	}
}

// The emulator runs deletedItems' endswith filter only as an advanced query, as Graph does.
func TestDeletedItemsFilterNeedsAdvancedQuery(t *testing.T) {
	t.Parallel()
	srv := graphtest.NewServer(t, testDirectory(t))
	for _, tc := range []struct {
		query, consistency string
		want               int
	}{
		{"$filter=endswith(userPrincipalName,'bianca.pisani@contoso.example')&$count=true", "eventual", http.StatusOK},
		{"$filter=endswith(userPrincipalName,'bianca.pisani@contoso.example')", "", http.StatusBadRequest},
		{"$filter=startswith(displayName,'b')&$count=true", "eventual", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/v1.0/directory/deletedItems/microsoft.graph.user?"+
			strings.NewReplacer(" ", "%20", "'", "%27").Replace(tc.query), nil)
		req.Header.Set("Authorization", "Bearer test-token")
		if tc.consistency != "" {
			req.Header.Set("ConsistencyLevel", tc.consistency)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s (ConsistencyLevel %q) = %d %s, want %d", tc.query, tc.consistency, resp.StatusCode, body, tc.want)
		}
	}
}
