package oracle

import (
	"slices"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

const (
	scope    = "5d0c2a4e-9b1f-4c6a-8e3d-2f7a1b9c0e11"
	inside   = "00000000-0000-4000-8000-000000000001"
	outside  = "00000000-0000-4000-8000-000000000002"
	gone     = "00000000-0000-4000-8000-000000000003"
	stranger = "00000000-0000-4000-8000-000000000004" // only ACS knows it
	app      = "11111111-2222-4333-8444-555555555555"
)

// The yardstick must itself be right: scope through the directory, deleted users not found,
// both resource-account wire names read as one type, other tenants ignored, and every
// principal either side knows checked once.
func TestOracle(t *testing.T) {
	dir := graphtest.NewDirectory(graphtest.SampleTenantID)
	teams := []graphtest.Plan{{ServicePlanID: graphtest.TeamsPlanID, CapabilityStatus: "Enabled"}}
	for _, id := range []string{inside, outside, gone} {
		if err := dir.AddUser(graphtest.UserRecord{ID: id, UserPrincipalName: id + "@contoso.example", AccountEnabled: true, AssignedPlans: teams}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dir.AddGroup(scope, "Scope", inside, gone); err != nil {
		t.Fatal(err)
	}
	if err := dir.DeleteUser(gone); err != nil {
		t.Fatal(err)
	}
	p := worker.Policy{ClientIDs: []string{app}, ScopeGroups: []string{scope}}
	for id, want := range map[string]worker.PrincipalType{inside: worker.PrincipalUser, outside: "", gone: "", stranger: ""} {
		if got := Verdict(dir, p, id); got.Type != want {
			t.Errorf("Verdict(%s) = %+v, want type %q", id, got, want)
		}
	}

	srv := acstest.NewServer(t)
	srv.Seed(
		acstest.Assignment{TenantID: graphtest.SampleTenantID, ObjectID: inside, PrincipalType: "User", ClientIDs: []string{app}},
		acstest.Assignment{TenantID: graphtest.SampleTenantID, ObjectID: stranger, PrincipalType: "resourceAccount"},
		acstest.Assignment{TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", ObjectID: outside, PrincipalType: "user"},
	)
	held := Held(srv, graphtest.SampleTenantID)
	if len(held) != 2 || held[inside].PrincipalType != worker.PrincipalUser || held[stranger].PrincipalType != worker.PrincipalResourceAccount {
		t.Errorf("Held = %v, want our tenant's two assignments with the worker's types", held)
	}
	if got, want := All(dir, held), []string{inside, outside, gone, stranger}; !slices.Equal(got, want) {
		t.Errorf("All = %v, want %v", got, want)
	}
}
