// Package oracle answers, without HTTP, what the eligibility policy wants for each principal
// of the emulators' state: the yardstick the end-to-end tests, the demo's self-check and the
// benchmarks compare ACS with. It reads graphtest's directory and acstest's store directly
// and asks the worker's own Eligibility, so it agrees with the worker by construction on the
// policy and checks only that the pipeline carried the policy out.
package oracle

import (
	"slices"
	"strings"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Verdict is the policy's answer for the principal id on dir as it is now: a user the
// directory does not hold (deleted or never there) is not found.
func Verdict(dir *graphtest.Directory, p worker.Policy, id string) worker.Verdict {
	r, ok := dir.LookupUser(id)
	if !ok {
		return worker.Eligibility(nil, false, p)
	}
	inScope := len(p.ScopeGroups) == 0
	for _, g := range dir.TransitiveGroupsOf(id) {
		inScope = inScope || slices.Contains(p.ScopeGroups, g)
	}
	return worker.Eligibility(User(r), inScope, p)
}

// User is the worker's view of a directory record (GUIDs lower-cased).
func User(r graphtest.UserRecord) *worker.User {
	u := &worker.User{ID: r.ID, UPN: r.UserPrincipalName, AccountEnabled: r.AccountEnabled, UserType: r.UserType,
		Department: r.Department}
	for _, l := range r.AssignedLicenses {
		u.SKUs = append(u.SKUs, strings.ToLower(l.SkuID))
	}
	for _, p := range r.AssignedPlans {
		u.Plans = append(u.Plans, worker.AssignedPlan{ServicePlanID: strings.ToLower(p.ServicePlanID),
			CapabilityStatus: p.CapabilityStatus, Service: p.Service})
	}
	return u
}

// Held returns the assignments srv stores for tenant, by object id, as the worker reads
// them (either resource-account wire name).
func Held(srv *acstest.Server, tenant string) map[string]*worker.Assignment {
	held := map[string]*worker.Assignment{}
	for _, a := range srv.Assignments() {
		if a.TenantID != tenant {
			continue
		}
		t := worker.PrincipalType(a.PrincipalType)
		switch strings.ToLower(a.PrincipalType) {
		case "user":
			t = worker.PrincipalUser
		case "teamsresourceaccount", "resourceaccount":
			t = worker.PrincipalResourceAccount
		}
		held[a.ObjectID] = &worker.Assignment{ObjectID: a.ObjectID, PrincipalType: t, ClientIDs: a.ClientIDs}
	}
	return held
}

// Principals lists every principal the directory knows, live users then deleted ones.
func Principals(dir *graphtest.Directory) []string {
	var ids []string
	for _, u := range dir.Users() {
		ids = append(ids, u.ID)
	}
	for _, u := range dir.DeletedUsers() {
		ids = append(ids, u.ID)
	}
	return ids
}

// All is every principal to check: the directory's, live and deleted, and every one held
// names (an assignment for someone the directory never had), sorted, each once.
func All(dir *graphtest.Directory, held map[string]*worker.Assignment) []string {
	ids := Principals(dir)
	for id := range held {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
