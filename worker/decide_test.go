package worker_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

const (
	ourApp1    = "1a1a1a1a-0000-4000-8000-000000000001"
	ourApp2    = "2b2b2b2b-0000-4000-8000-000000000002"
	foreignApp = "9f9f9f9f-0000-4000-8000-00000000000f"
	decideOID  = "3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	// Our ids are configured in mixed case and out of order: comparison ignores both.
	ours := worker.Policy{ClientIDs: []string{strings.ToUpper(ourApp2), ourApp1}}
	managed := ours
	managed.ManageResourceAccounts = true
	var (
		user   = worker.Verdict{worker.PrincipalUser, "teams plan enabled"}
		ra     = worker.Verdict{worker.PrincipalResourceAccount, "resource account licence"}
		gone   = worker.Verdict{Reason: "account disabled"}
		none   *worker.Assignment
		asUser = func(ids ...string) *worker.Assignment {
			return &worker.Assignment{ObjectID: decideOID, PrincipalType: worker.PrincipalUser, ClientIDs: ids}
		}
		asRA   = &worker.Assignment{ObjectID: decideOID, PrincipalType: worker.PrincipalResourceAccount}
		putRA  = &worker.Assignment{ObjectID: decideOID, PrincipalType: worker.PrincipalResourceAccount}
		putNew = func(ids ...string) *worker.Assignment {
			return &worker.Assignment{PrincipalType: worker.PrincipalUser, ClientIDs: ids}
		}
	)
	tests := []struct {
		name    string
		verdict worker.Verdict
		cmd     worker.Command
		current *worker.Assignment
		policy  worker.Policy
		want    worker.Plan
	}{
		// Resource accounts.
		{"resource account without assignment gets one", ra, worker.CommandReconcile, none, ours,
			worker.Plan{Action: worker.ActionGrant, Reason: ra.Reason, Put: &worker.Assignment{PrincipalType: worker.PrincipalResourceAccount}}},
		{"resource account already assigned is left alone", ra, worker.CommandReconcile, asRA, ours,
			worker.Plan{Action: worker.ActionNoop, Reason: ra.Reason}},
		{"resource account holding only our user assignment is converted", ra, worker.CommandReconcile, asUser(ourApp1), ours,
			worker.Plan{Action: worker.ActionGrant, Reason: ra.Reason, Put: putRA}},
		{"resource account with another application's user assignment is a conflict", ra, worker.CommandReconcile,
			asUser(ourApp1, foreignApp), ours, worker.Plan{Action: worker.ActionSkip, Reason: "conflict: user assignment with other applications"}},
		{"resource account with only a foreignApp user assignment is a conflict", ra, worker.CommandReconcile,
			asUser(foreignApp), managed, worker.Plan{Action: worker.ActionSkip, Reason: "conflict: user assignment with other applications"}},
		// Eligible users.
		{"eligible user without assignment gets our ids, sorted and lower-case", user, worker.CommandReconcile, none, ours,
			worker.Plan{Action: worker.ActionGrant, Reason: user.Reason, Put: putNew(ourApp1, ourApp2)}},
		{"eligible user holding our ids in another case is a no-op", user, worker.CommandReconcile,
			asUser(strings.ToUpper(ourApp1), ourApp2), ours, worker.Plan{Action: worker.ActionNoop, Reason: user.Reason}},
		{"eligible user holding our ids twice is a no-op", user, worker.CommandReconcile,
			asUser(ourApp2, ourApp1, strings.ToUpper(ourApp1)), ours, worker.Plan{Action: worker.ActionNoop, Reason: user.Reason}},
		{"eligible user with another application keeps it", user, worker.CommandReconcile, asUser(foreignApp), ours,
			worker.Plan{Action: worker.ActionGrant, Reason: user.Reason,
				Put: &worker.Assignment{ObjectID: decideOID, PrincipalType: worker.PrincipalUser, ClientIDs: []string{ourApp1, ourApp2, foreignApp}}}},
		{"eligible user missing one of our ids gets it", user, worker.CommandReconcile, asUser(ourApp2), ours,
			worker.Plan{Action: worker.ActionGrant, Reason: user.Reason,
				Put: &worker.Assignment{ObjectID: decideOID, PrincipalType: worker.PrincipalUser, ClientIDs: []string{ourApp1, ourApp2}}}},
		{"eligible user with a resource account assignment is skipped when not managed", user, worker.CommandReconcile, asRA, ours,
			worker.Plan{Action: worker.ActionSkip, Reason: "resource accounts not managed"}},
		{"eligible user with a resource account assignment is replaced when managed", user, worker.CommandReconcile, asRA, managed,
			worker.Plan{Action: worker.ActionGrant, Reason: user.Reason,
				Put: &worker.Assignment{ObjectID: decideOID, PrincipalType: worker.PrincipalUser, ClientIDs: []string{ourApp1, ourApp2}}}},
		{"eligible user without configured client ids is skipped", user, worker.CommandReconcile, none, worker.Policy{},
			worker.Plan{Action: worker.ActionSkip, Reason: "no client ids configured"}},
		// Principals that are not eligible.
		{"not eligible without assignment is a no-op", gone, worker.CommandReconcile, none, ours,
			worker.Plan{Action: worker.ActionNoop, Reason: gone.Reason}},
		{"not eligible with only our ids deletes the assignment", gone, worker.CommandReconcile, asUser(ourApp1, ourApp2), ours,
			worker.Plan{Action: worker.ActionRevoke, Reason: gone.Reason, Delete: true}},
		{"not eligible with another application keeps only theirs", gone, worker.CommandReconcile,
			asUser(ourApp1, strings.ToUpper(foreignApp)), ours,
			worker.Plan{Action: worker.ActionRevoke, Reason: gone.Reason,
				Put: &worker.Assignment{ObjectID: decideOID, PrincipalType: worker.PrincipalUser, ClientIDs: []string{foreignApp}}}},
		{"not eligible with only another application's ids is a no-op", gone, worker.CommandReconcile, asUser(foreignApp), ours,
			worker.Plan{Action: worker.ActionNoop, Reason: gone.Reason}},
		{"not eligible resource account assignment is kept when not managed", gone, worker.CommandReconcile, asRA, ours,
			worker.Plan{Action: worker.ActionSkip, Reason: "resource accounts not managed"}},
		{"not eligible resource account assignment is deleted when managed", gone, worker.CommandReconcile, asRA, managed,
			worker.Plan{Action: worker.ActionRevoke, Reason: gone.Reason, Delete: true}},
		{"assignment of an unknown type is never touched", gone, worker.CommandReconcile,
			&worker.Assignment{ObjectID: decideOID, PrincipalType: "bot"}, managed,
			worker.Plan{Action: worker.ActionSkip, Reason: "assignment of unknown principal type"}},
		// Operator overrides.
		{"grant ignores eligibility and assigns a user", gone, worker.CommandGrant, none, ours,
			worker.Plan{Action: worker.ActionGrant, Reason: "operator grant", Put: putNew(ourApp1, ourApp2)}},
		{"grant of a resource account assigns a resource account", ra, worker.CommandGrant, none, ours,
			worker.Plan{Action: worker.ActionGrant, Reason: "operator grant", Put: &worker.Assignment{PrincipalType: worker.PrincipalResourceAccount}}},
		{"grant when already granted is a no-op", gone, worker.CommandGrant, asUser(ourApp1, ourApp2, foreignApp), ours,
			worker.Plan{Action: worker.ActionNoop, Reason: "operator grant"}},
		{"grant keeps ownership: no converting another application's assignment", ra, worker.CommandGrant,
			asUser(foreignApp), managed, worker.Plan{Action: worker.ActionSkip, Reason: "conflict: user assignment with other applications"}},
		{"revoke ignores eligibility and removes our ids", user, worker.CommandRevoke, asUser(ourApp1, foreignApp), ours,
			worker.Plan{Action: worker.ActionRevoke, Reason: "operator revoke",
				Put: &worker.Assignment{ObjectID: decideOID, PrincipalType: worker.PrincipalUser, ClientIDs: []string{foreignApp}}}},
		{"revoke keeps ownership: resource accounts need management", ra, worker.CommandRevoke, asRA, ours,
			worker.Plan{Action: worker.ActionSkip, Reason: "resource accounts not managed"}},
		{"revoke of a managed resource account deletes it", ra, worker.CommandRevoke, asRA, managed,
			worker.Plan{Action: worker.ActionRevoke, Reason: "operator revoke", Delete: true}},
		{"revoke without assignment is a no-op", user, worker.CommandRevoke, none, ours,
			worker.Plan{Action: worker.ActionNoop, Reason: "operator revoke"}},
		{"empty command reconciles", user, "", none, ours,
			worker.Plan{Action: worker.ActionGrant, Reason: user.Reason, Put: putNew(ourApp1, ourApp2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := cloneAssignment(tt.current)
			got := worker.Decide(tt.verdict, tt.cmd, tt.current, tt.policy)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide() = %s, want %s", planString(got), planString(tt.want))
			}
			if !reflect.DeepEqual(tt.current, before) {
				t.Errorf("Decide modified the current assignment: %+v, was %+v", tt.current, before)
			}
			if got.Put != nil && got.Put.PrincipalType == worker.PrincipalUser && len(got.Put.ClientIDs) == 0 {
				t.Errorf("Decide() plans a user assignment without client ids")
			}
		})
	}
}

func cloneAssignment(a *worker.Assignment) *worker.Assignment {
	if a == nil {
		return nil
	}
	c := *a
	c.ClientIDs = slices.Clone(a.ClientIDs)
	return &c
}

func planString(p worker.Plan) string {
	s := string(p.Action) + " (" + p.Reason + ")"
	if p.Put != nil {
		s += " put " + string(p.Put.PrincipalType) + " " + p.Put.ObjectID + " [" + strings.Join(p.Put.ClientIDs, ",") + "]"
	}
	if p.Delete {
		s += " delete"
	}
	return s
}
