package graphtest_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// TestMutateWhileServing changes the directory while listings and reads run; run with
// -race to check the locking.
func TestMutateWhileServing(t *testing.T) {
	t.Parallel()
	d := graphtest.Generate(300, 11, graphtest.DefaultMix)
	srv := graphtest.NewServer(t, d, func(o *graphtest.Options) { o.MaxPageSize = 50 })
	users := d.Users()
	check := func(err error) { // t.Fatal may not run outside the test's goroutine
		if err != nil {
			t.Error(err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, u := range users[:100] {
			switch i % 4 {
			case 0:
				check(d.SetPlans(u.ID, graphtest.Plan{ServicePlanID: graphtest.TeamsPlanID, CapabilityStatus: "Suspended"}))
			case 1:
				check(d.DeleteUser(u.ID))
			case 2:
				check(d.AddMember(graphtest.ScopeGroupID, u.ID))
			case 3:
				check(d.AddUser(graphtest.UserRecord{ID: fmt.Sprintf("new-%d", i), UserPrincipalName: fmt.Sprintf("new%d@contoso.example", i)}))
			}
		}
	})
	for _, path := range []string{
		"/v1.0/users?$select=id,assignedPlans",
		"/v1.0/groups/" + graphtest.ScopeGroupID + "/transitiveMembers/microsoft.graph.user?$select=id&$count=true",
		"/v1.0/directory/deletedItems/microsoft.graph.user",
	} {
		wg.Go(func() {
			next := srv.URL() + path
			for next != "" {
				status, _, m := call(t, "GET", next, "", "ConsistencyLevel", "eventual")
				if status != 200 {
					t.Errorf("GET %s: %d", next, status)
					return
				}
				next, _ = m["@odata.nextLink"].(string)
			}
		})
	}
	wg.Wait()
	if got := len(d.DeletedUsers()); got < 25 {
		t.Errorf("%d deleted users after 25 deletions", got)
	}
}
