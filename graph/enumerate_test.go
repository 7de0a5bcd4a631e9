package graph_test

import (
	"context"
	"iter"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// collect drains a sequence, failing the test on an error.
func collect(t *testing.T, seq iter.Seq2[graph.User, error]) []graph.User {
	t.Helper()
	var out []graph.User
	for u, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func ids(us []graph.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func TestEnumerations(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, testDirectory(t), graph.Options{})
	ctx := context.Background()
	tests := []struct {
		name string
		seq  iter.Seq2[graph.User, error]
		want []string
	}{
		{"scope members through the nested group", c.ScopeMembers(ctx, []string{scope}), sorted(adeleID, guestID, raID, agentID)},
		{"nested group alone", c.ScopeMembers(ctx, []string{nested}), sorted(raID, agentID)},
		{"teams users by plan, any status", c.TeamsUsers(ctx, []string{teams1}), sorted(adeleID, guestID, agentID)},
		{"teams users with no plan ids", c.TeamsUsers(ctx, nil), []string{}},
		{"resource accounts by sku", c.ResourceAccounts(ctx, []string{"0e142028-345e-45da-8d92-8bfd4093bbb9", raSku}), []string{raID}},
		{"deleted users", c.DeletedUsers(ctx, time.Time{}), []string{goneID}},
		{"deleted users since before the deletion", c.DeletedUsers(ctx, deletedAt.Add(-time.Minute)), []string{goneID}},
		{"deleted users since after the deletion", c.DeletedUsers(ctx, deletedAt.Add(time.Minute)), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(collect(t, tt.seq)); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEnumeratedUsersCarryPolicyProperties(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, testDirectory(t), graph.Options{})
	ctx := context.Background()
	for _, u := range collect(t, c.ScopeMembers(ctx, []string{nested})) {
		if u.ID == raID && (u.Department == "" || !slices.Equal(u.SKUs, []string{raSku}) || len(u.Plans) != 1) {
			t.Errorf("resource account read without its selected properties: %+v", u)
		}
	}
	del := collect(t, c.DeletedUsers(ctx, time.Time{}))
	if len(del) != 1 || !del[0].DeletedAt.Equal(deletedAt) || len(del[0].Plans) != 1 {
		t.Errorf("deleted users = %+v, want one deleted at %v with its plans", del, deletedAt)
	}
}

func TestPagingFollowsNextLink(t *testing.T) {
	t.Parallel()
	dir := graphtest.Generate(260, 7, graphtest.Mix{Deleted: 0.3, InScope: 1})
	c, srv := newClient(t, dir, graph.Options{PageSize: 100}, func(o *graphtest.Options) { o.MaxPageSize = 25 })
	ctx := context.Background()

	var wantTeams, wantScope []string
	for _, u := range dir.Users() {
		wantScope = append(wantScope, u.ID)
		if slices.ContainsFunc(u.AssignedPlans, func(p graphtest.Plan) bool { return p.ServicePlanID == teams1 }) {
			wantTeams = append(wantTeams, u.ID)
		}
	}
	var wantDeleted []string
	for _, u := range dir.DeletedUsers() {
		wantDeleted = append(wantDeleted, u.ID)
	}
	slices.Sort(wantTeams)
	slices.Sort(wantScope)
	slices.Sort(wantDeleted)

	tests := []struct {
		name  string
		seq   iter.Seq2[graph.User, error]
		route string
		want  []string
	}{
		{"teams users", c.TeamsUsers(ctx, []string{teams1}), "GET /v1.0/users", wantTeams},
		{"scope members", c.ScopeMembers(ctx, []string{graphtest.ScopeGroupID}), "GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user", wantScope},
		{"deleted users", c.DeletedUsers(ctx, time.Time{}), "GET /v1.0/directory/deletedItems/microsoft.graph.user", wantDeleted},
	}
	for _, tt := range tests {
		before := c.Pages()
		got := ids(collect(t, tt.seq))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %d users, want %d", tt.name, len(got), len(tt.want))
		}
		if pages, min := srv.Calls(tt.route), (len(tt.want)+24)/25; pages != min || pages < 3 {
			t.Errorf("%s: %d pages for %d users at 25 per page, want %d (≥ 3)", tt.name, pages, len(tt.want), min)
		}
		if counted, served := c.Pages()-before, int64(srv.Calls(tt.route)); counted != served {
			t.Errorf("%s: Pages() counted %d pages, the emulator served %d", tt.name, counted, served)
		}
	}
}

// While the consumer is busy with a page the next one is read, so a slow consumer never
// waits for Graph at a page boundary; a consumer that stops early stops the paging: beyond
// the page it read, only the one read ahead is fetched.
func TestPagingReadsOnePageAhead(t *testing.T) {
	t.Parallel()
	dir := graphtest.Generate(400, 3, graphtest.Mix{})
	c, srv := newClient(t, dir, graph.Options{PageSize: 50})
	n := 0
	for _, err := range c.TeamsUsers(context.Background(), []string{teams1}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 1 {
			// Still on the first user of page 1: page 2 is fetched without being asked for.
			deadline := time.Now().Add(10 * time.Second)
			for srv.Calls("GET /v1.0/users") < 2 {
				if time.Now().After(deadline) {
					t.Fatal("page 2 was not read while page 1 was being consumed")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if n == 10 {
			break
		}
	}
	if got := srv.Calls("GET /v1.0/users"); got != 2 {
		t.Errorf("fetched %d pages to read 10 users, want 2 (the page read and the one read ahead)", got)
	}
}

func TestPageErrorEndsTheSequence(t *testing.T) {
	t.Parallel()
	dir := graphtest.Generate(120, 5, graphtest.Mix{})
	srv := graphtest.NewServer(t, dir)
	// The second page of the listing fails, whenever it is read.
	var listings atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1.0/users" && listings.Add(1) == 2 {
			srv.FailNext(500, 0)
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	c, err := graph.NewClient(&tokenCred{token: "test-token"}, &graph.Options{Endpoint: front.URL, PageSize: 50, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var last error
	for _, err := range c.TeamsUsers(context.Background(), []string{teams1}) {
		if err != nil {
			last = err
			break
		}
		got++
	}
	if got != 50 || classify(last) != (behaviour{temporary: true}) {
		t.Errorf("read %d users then err %v; want 50 then a temporary error", got, last)
	}
}

func TestGroupMembersAndMemberOf(t *testing.T) {
	t.Parallel()
	c, srv := newClient(t, testDirectory(t), graph.Options{})
	ctx := context.Background()
	var members []string
	for id, err := range c.GroupMembers(ctx, scope) {
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, id)
	}
	slices.Sort(members)
	if want := sorted(adeleID, guestID, raID, agentID); !slices.Equal(members, want) {
		t.Errorf("GroupMembers = %v, want %v", members, want)
	}

	// 25 candidate groups: two calls of at most 20; the agent is in scope only through
	// the nested group.
	groups := []string{scope}
	for i := range 23 {
		groups = append(groups, graphtestGUID(i))
	}
	groups = append(groups, nested)
	tests := []struct {
		user string
		want []string
	}{
		{agentID, []string{scope, nested}},
		{adeleID, []string{scope}},
		{outsideID, nil},
	}
	for _, tt := range tests {
		before := srv.Calls("POST /v1.0/users/{id}/checkMemberGroups")
		got, err := c.MemberOf(ctx, tt.user, groups)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("MemberOf(%s) = %v, want %v", tt.user, got, tt.want)
		}
		if calls := srv.Calls("POST /v1.0/users/{id}/checkMemberGroups") - before; calls != 2 {
			t.Errorf("MemberOf with 25 groups made %d calls, want 2", calls)
		}
	}
	_, err := c.MemberOf(ctx, goneID, []string{scope})
	if !classify(err).notFound {
		t.Errorf("MemberOf(deleted user) err = %v, want not found", err)
	}
}

func graphtestGUID(i int) string {
	return "00000000-0000-4000-8000-" + string(rune('a'+i%26)) + "00000000000"
}
