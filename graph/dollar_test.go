package graph_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// A UPN that starts with $ is read as /users('$x@y'), the form user-get says works;
// /users/$x@y is 400 in Graph. Other keys keep the plain form.
func TestUserByDollarUPN(t *testing.T) {
	t.Parallel()
	d := testDirectory(t)
	const dollarID = "1b7f3c2a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	for _, upn := range []string{"$adele@contoso.example", "$o'brien@contoso.example"} {
		id := dollarID
		if strings.Contains(upn, "'") {
			id = "2c8f3c2a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
		}
		must(t, d.AddUser(graphtest.UserRecord{ID: id, UserPrincipalName: upn, AccountEnabled: true,
			AssignedLicenses: []graphtest.License{{SkuID: e5}}}))
	}
	c, srv := newClient(t, d, graph.Options{})
	for _, upn := range []string{"$adele@contoso.example", "$O'Brien@contoso.example"} {
		u, err := c.User(context.Background(), upn)
		if err != nil {
			t.Fatalf("User(%q): %v", upn, err)
		}
		if !strings.EqualFold(u.UPN, upn) || !u.AccountEnabled {
			t.Errorf("User(%q) = %+v", upn, u)
		}
	}
	if _, err := c.User(context.Background(), adeleID); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range srv.Requests() {
		paths = append(paths, r.Path)
		if !strings.Contains(r.Query, "$select=") {
			t.Errorf("%s sent without $select", r.Path)
		}
	}
	want := []string{"/v1.0/users('$adele@contoso.example')", "/v1.0/users('$O''Brien@contoso.example')", "/v1.0/users/" + adeleID}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("paths %q, want %q", paths, want)
	}
}
