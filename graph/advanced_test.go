package graph_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
)

// Every page of a transitive members listing is an advanced query: ConsistencyLevel:
// eventual and $count=true, the first page and the next links alike (graphtest is strict
// by default and refuses the cast without them).
func TestTransitiveMembersAreAdvancedQueries(t *testing.T) {
	t.Parallel()
	c, srv := newClient(t, testDirectory(t), graph.Options{PageSize: 1})
	n := 0
	for _, err := range c.ScopeMembers(context.Background(), []string{scope}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 4 {
		t.Errorf("%d members, want 4", n)
	}
	pages := 0
	for _, r := range srv.Requests() {
		if r.Route != "GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user" {
			continue
		}
		pages++
		if r.Header.Get("ConsistencyLevel") != "eventual" || !strings.Contains(r.Query, "%24count=true") && !strings.Contains(r.Query, "$count=true") {
			t.Errorf("page %d: ConsistencyLevel %q query %q", pages, r.Header.Get("ConsistencyLevel"), r.Query)
		}
	}
	if pages < 4 {
		t.Errorf("%d pages, want one per member", pages)
	}
}
