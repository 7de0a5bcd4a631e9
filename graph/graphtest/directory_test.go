package graphtest_test

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

const sampleFile = "../../deploy/local/directory.json"

func TestSampleDirectory(t *testing.T) {
	t.Parallel()
	d, err := graphtest.LoadDirectoryFile(sampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if d.TenantID() != graphtest.SampleTenantID {
		t.Errorf("tenant = %s, want %s", d.TenantID(), graphtest.SampleTenantID)
	}
	var teams, ra, guests, disabled, suspended, both int
	for _, u := range d.Users() {
		hasTeams := slices.ContainsFunc(u.AssignedPlans, func(p graphtest.Plan) bool {
			return p.ServicePlanID == graphtest.TeamsPlanID && p.CapabilityStatus == "Enabled"
		})
		isRA := slices.Contains(u.AssignedLicenses, graphtest.License{SkuID: graphtest.RASkuID})
		switch {
		case hasTeams && isRA:
			both++
		case isRA:
			ra++
			if u.AccountEnabled || u.Department != graphtest.RADepartment {
				t.Errorf("resource account %s should be disabled with department %q", u.UserPrincipalName, graphtest.RADepartment)
			}
		case u.UserType == "Guest":
			guests++
		case !u.AccountEnabled:
			disabled++
		case hasTeams:
			teams++
		case slices.ContainsFunc(u.AssignedPlans, func(p graphtest.Plan) bool { return p.CapabilityStatus == "Suspended" }):
			suspended++
		}
	}
	if teams < 10 || ra < 2 || guests < 1 || disabled < 1 || suspended != 1 || both != 1 || len(d.DeletedUsers()) < 2 {
		t.Errorf("sample mix: teams %d, resource accounts %d, guests %d, disabled %d, suspended %d, both %d, deleted %d",
			teams, ra, guests, disabled, suspended, both, len(d.DeletedUsers()))
	}
	g, ok := d.Group(graphtest.ScopeGroupID)
	if !ok || g.DisplayName != "Teams Phone Extensibility" || !slices.Contains(g.Members, graphtest.NestedGroupID) {
		t.Errorf("scope group = %+v, want 'Teams Phone Extensibility' containing the nested group", g)
	}
	nested := d.TransitiveUserMembers(graphtest.NestedGroupID)
	all := d.TransitiveUserMembers(graphtest.ScopeGroupID)
	for _, id := range nested {
		if !slices.Contains(all, id) {
			t.Errorf("nested member %s missing from the scope's transitive members", id)
		}
	}
}

func TestLoadDirectoryRejectsUnknownFields(t *testing.T) {
	t.Parallel()
	_, err := graphtest.LoadDirectory(strings.NewReader(`{"tenantId":"x","users":[{"id":"a","userPrincipalName":"a@x","licences":[]}]}`))
	if err == nil {
		t.Error("a misspelt property loaded silently")
	}
}

func TestMembershipHelpers(t *testing.T) {
	t.Parallel()
	d := graphtest.NewDirectory(graphtest.SampleTenantID)
	for _, id := range []string{"u1", "u2", "u3"} {
		must(t, d.AddUser(graphtest.UserRecord{ID: id, UserPrincipalName: id + "@contoso.example", AccountEnabled: true}))
	}
	must(t, d.AddGroup("top", "Top", "u1", "mid"))
	must(t, d.AddGroup("mid", "Mid", "u2", "leaf"))
	must(t, d.AddGroup("leaf", "Leaf", "u3", "top")) // a cycle must not loop forever

	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"groups of u3 through two levels and a cycle", d.TransitiveGroupsOf("U3"), []string{"leaf", "mid", "top"}},
		{"users of top", d.TransitiveUserMembers("top"), []string{"u1", "u2", "u3"}},
		{"users of leaf (cycle back to top)", d.TransitiveUserMembers("leaf"), []string{"u1", "u2", "u3"}},
		{"unknown group", d.TransitiveUserMembers("nope"), nil},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	must(t, d.RemoveMember("mid", "leaf"))
	if got, want := d.TransitiveGroupsOf("u3"), []string{"leaf"}; !slices.Equal(got, want) {
		t.Errorf("after RemoveMember: groups of u3 = %v, want %v", got, want)
	}
	must(t, d.AddMember("mid", "u3"))
	if got, want := d.TransitiveUserMembers("mid"), []string{"u2", "u3"}; !slices.Equal(got, want) {
		t.Errorf("after AddMember: users of mid = %v, want %v", got, want)
	}
}

// The group listings page through a cached closure: every change to memberships or to which
// users are live must show in the next read, and a caller's copy must not alias the cache.
func TestTransitiveUserMembersFollowChanges(t *testing.T) {
	t.Parallel()
	d := graphtest.NewDirectory(graphtest.SampleTenantID)
	for _, id := range []string{"u1", "u2", "u3"} {
		must(t, d.AddUser(graphtest.UserRecord{ID: id, UserPrincipalName: id + "@contoso.example", AccountEnabled: true}))
	}
	must(t, d.AddGroup("top", "Top", "u1"))
	steps := []struct {
		name   string
		change func() error
		want   []string
	}{
		{"start", func() error { return nil }, []string{"u1"}},
		{"add a user member", func() error { return d.AddMember("top", "u2") }, []string{"u1", "u2"}},
		{"add a nested group", func() error { return d.AddGroup("sub", "Sub", "u3") }, []string{"u1", "u2"}},
		{"nest it", func() error { return d.AddMember("top", "sub") }, []string{"u1", "u2", "u3"}},
		{"remove a member", func() error { return d.RemoveMember("top", "u1") }, []string{"u2", "u3"}},
		{"soft-delete a member", func() error { return d.DeleteUser("u2") }, []string{"u3"}},
		{"add a user who is listed already", func() error {
			if err := d.AddMember("sub", "u4"); err != nil {
				return err
			}
			return d.AddUser(graphtest.UserRecord{ID: "u4", UserPrincipalName: "u4@contoso.example"})
		}, []string{"u3", "u4"}},
		{"purge a member", func() error { return d.PurgeUser("u3") }, []string{"u4"}},
	}
	for _, st := range steps {
		must(t, st.change())
		got := d.TransitiveUserMembers("top")
		if !slices.Equal(got, st.want) {
			t.Fatalf("after %s: users of top = %v, want %v", st.name, got, st.want)
		}
		got[0] = "changed by the caller"
		if again := d.TransitiveUserMembers("top"); !slices.Equal(again, st.want) {
			t.Fatalf("after %s: a caller's change to the result reached the directory: %v", st.name, again)
		}
	}
}

func TestMutations(t *testing.T) {
	t.Parallel()
	d := graphtest.NewDirectory(graphtest.SampleTenantID)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	d.SetClock(func() time.Time { return at })
	must(t, d.AddUser(graphtest.UserRecord{ID: "AAAA-1", UserPrincipalName: "Ann@Contoso.example", AccountEnabled: true}))
	must(t, d.AddGroup("g", "G", "aaaa-1"))
	if err := d.AddUser(graphtest.UserRecord{ID: "aaaa-2", UserPrincipalName: "ann@contoso.example"}); err == nil {
		t.Error("a second user with the same UPN was accepted")
	}

	before, _ := d.LookupUser("ann@contoso.example")
	must(t, d.SetAccountEnabled("aaaa-1", false))
	must(t, d.SetLicenses("ann@contoso.example", "440EAAA8-B3E0-484B-A8BE-62870B9BA70A"))
	must(t, d.SetPlans("aaaa-1", graphtest.Plan{ServicePlanID: graphtest.RAPlanID, CapabilityStatus: "Enabled"}))
	after, ok := d.User("AAAA-1")
	if !ok || after.AccountEnabled || after.AssignedLicenses[0].SkuID != graphtest.RASkuID || len(after.AssignedPlans) != 1 {
		t.Errorf("after mutations: %+v", after)
	}
	if !before.AccountEnabled || len(before.AssignedLicenses) != 0 {
		t.Errorf("an earlier snapshot changed: %+v", before)
	}

	must(t, d.DeleteUser("aaaa-1"))
	if _, ok := d.LookupUser("aaaa-1"); ok {
		t.Error("a deleted user is still found")
	}
	del := d.DeletedUsers()
	if len(del) != 1 || !del[0].DeletedDateTime.Equal(at) {
		t.Errorf("deleted users = %+v, want one deleted at %v", del, at)
	}
	if got := d.TransitiveGroupsOf("aaaa-1"); !slices.Equal(got, []string{"g"}) {
		t.Errorf("soft delete dropped memberships: %v", got)
	}
	must(t, d.PurgeUser("aaaa-1"))
	if len(d.DeletedUsers()) != 0 || len(d.TransitiveGroupsOf("aaaa-1")) != 0 {
		t.Error("purge left the user or its memberships behind")
	}
	if err := d.SetAccountEnabled("aaaa-1", true); !errors.Is(err, graphtest.ErrNoSuchUser) {
		t.Errorf("mutating a purged user: err %v, want ErrNoSuchUser", err)
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	a := graphtest.Generate(2000, 42, graphtest.DefaultMix)
	b := graphtest.Generate(2000, 42, graphtest.DefaultMix)
	if !slices.EqualFunc(a.Users(), b.Users(), func(x, y graphtest.UserRecord) bool { return x.ID == y.ID }) {
		t.Error("the same seed gave different directories")
	}
	live, del := len(a.Users()), len(a.DeletedUsers())
	if live+del != 2000 || del < 10 || del > 100 {
		t.Errorf("live %d + deleted %d, want 2000 with about 2%% deleted", live, del)
	}
	inScope := len(a.TransitiveUserMembers(graphtest.ScopeGroupID))
	if inScope < live*4/10 || inScope > live*6/10 {
		t.Errorf("%d of %d users in scope, want about half", inScope, live)
	}
	ra := 0
	for _, u := range a.Users() {
		if u.Department == graphtest.RADepartment {
			ra++
		}
	}
	if ra < 20 || ra > 70 {
		t.Errorf("%d resource accounts in 2000, want about 2%%", ra)
	}
}

// Every generated user, guests with #EXT# in their UPN included, is found by UPN, in
// any letter case, directly and over HTTP.
func TestGeneratedUsersAreFoundByUPN(t *testing.T) {
	t.Parallel()
	d := graphtest.Generate(2000, 42, graphtest.DefaultMix)
	srv := graphtest.NewServer(t, d)
	guests := 0
	for _, u := range d.Users() {
		if u.UserType == "Guest" {
			guests++
		}
		for _, key := range []string{u.UserPrincipalName, strings.ToUpper(u.UserPrincipalName)} {
			if got, ok := d.LookupUser(key); !ok || got.ID != u.ID {
				t.Fatalf("LookupUser(%q) = %v, %v; want %s", key, got.ID, ok, u.ID)
			}
		}
		if u.UserType == "Guest" && guests <= 3 {
			status, _, m := call(t, "GET", srv.URL()+"/v1.0/users/"+url.PathEscape(u.UserPrincipalName), "")
			if status != 200 || m["id"] != u.ID {
				t.Errorf("GET guest %s: %d %v", u.UserPrincipalName, status, m)
			}
		}
	}
	if guests < 50 {
		t.Fatalf("only %d guests generated", guests)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
