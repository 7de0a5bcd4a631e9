package worker

import (
	"reflect"
	"slices"
	"strings"
	"testing"
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
	ours := Policy{ClientIDs: []string{strings.ToUpper(ourApp2), ourApp1}}
	managed := ours
	managed.ManageResourceAccounts = true
	var (
		user   = Verdict{PrincipalUser, "teams plan enabled"}
		ra     = Verdict{PrincipalResourceAccount, "resource account licence"}
		gone   = Verdict{Reason: "account disabled"}
		none   *Assignment
		asUser = func(ids ...string) *Assignment {
			return &Assignment{ObjectID: decideOID, PrincipalType: PrincipalUser, ClientIDs: ids}
		}
		asRA   = &Assignment{ObjectID: decideOID, PrincipalType: PrincipalResourceAccount}
		putRA  = &Assignment{ObjectID: decideOID, PrincipalType: PrincipalResourceAccount}
		putNew = func(ids ...string) *Assignment { return &Assignment{PrincipalType: PrincipalUser, ClientIDs: ids} }
	)
	tests := []struct {
		name    string
		verdict Verdict
		cmd     Command
		current *Assignment
		policy  Policy
		want    Plan
	}{
		// Resource accounts.
		{"resource account without assignment gets one", ra, CommandReconcile, none, ours,
			Plan{Action: ActionGrant, Reason: ra.Reason, Put: &Assignment{PrincipalType: PrincipalResourceAccount}}},
		{"resource account already assigned is left alone", ra, CommandReconcile, asRA, ours,
			Plan{Action: ActionNoop, Reason: ra.Reason}},
		{"resource account holding only our user assignment is converted", ra, CommandReconcile, asUser(ourApp1), ours,
			Plan{Action: ActionGrant, Reason: ra.Reason, Put: putRA}},
		{"resource account with another application's user assignment is a conflict", ra, CommandReconcile,
			asUser(ourApp1, foreignApp), ours, Plan{Action: ActionSkip, Reason: "conflict: user assignment with other applications"}},
		{"resource account with only a foreignApp user assignment is a conflict", ra, CommandReconcile,
			asUser(foreignApp), managed, Plan{Action: ActionSkip, Reason: "conflict: user assignment with other applications"}},
		// Eligible users.
		{"eligible user without assignment gets our ids, sorted and lower-case", user, CommandReconcile, none, ours,
			Plan{Action: ActionGrant, Reason: user.Reason, Put: putNew(ourApp1, ourApp2)}},
		{"eligible user holding our ids in another case is a no-op", user, CommandReconcile,
			asUser(strings.ToUpper(ourApp1), ourApp2), ours, Plan{Action: ActionNoop, Reason: user.Reason}},
		{"eligible user holding our ids twice is a no-op", user, CommandReconcile,
			asUser(ourApp2, ourApp1, strings.ToUpper(ourApp1)), ours, Plan{Action: ActionNoop, Reason: user.Reason}},
		{"eligible user with another application keeps it", user, CommandReconcile, asUser(foreignApp), ours,
			Plan{Action: ActionGrant, Reason: user.Reason,
				Put: &Assignment{ObjectID: decideOID, PrincipalType: PrincipalUser, ClientIDs: []string{ourApp1, ourApp2, foreignApp}}}},
		{"eligible user missing one of our ids gets it", user, CommandReconcile, asUser(ourApp2), ours,
			Plan{Action: ActionGrant, Reason: user.Reason,
				Put: &Assignment{ObjectID: decideOID, PrincipalType: PrincipalUser, ClientIDs: []string{ourApp1, ourApp2}}}},
		{"eligible user with a resource account assignment is skipped when not managed", user, CommandReconcile, asRA, ours,
			Plan{Action: ActionSkip, Reason: "resource accounts not managed"}},
		{"eligible user with a resource account assignment is replaced when managed", user, CommandReconcile, asRA, managed,
			Plan{Action: ActionGrant, Reason: user.Reason,
				Put: &Assignment{ObjectID: decideOID, PrincipalType: PrincipalUser, ClientIDs: []string{ourApp1, ourApp2}}}},
		{"eligible user without configured client ids is skipped", user, CommandReconcile, none, Policy{},
			Plan{Action: ActionSkip, Reason: "no client ids configured"}},
		// Principals that are not eligible.
		{"not eligible without assignment is a no-op", gone, CommandReconcile, none, ours,
			Plan{Action: ActionNoop, Reason: gone.Reason}},
		{"not eligible with only our ids deletes the assignment", gone, CommandReconcile, asUser(ourApp1, ourApp2), ours,
			Plan{Action: ActionRevoke, Reason: gone.Reason, Delete: true}},
		{"not eligible with another application keeps only theirs", gone, CommandReconcile,
			asUser(ourApp1, strings.ToUpper(foreignApp)), ours,
			Plan{Action: ActionRevoke, Reason: gone.Reason,
				Put: &Assignment{ObjectID: decideOID, PrincipalType: PrincipalUser, ClientIDs: []string{foreignApp}}}},
		{"not eligible with only another application's ids is a no-op", gone, CommandReconcile, asUser(foreignApp), ours,
			Plan{Action: ActionNoop, Reason: gone.Reason}},
		{"not eligible resource account assignment is kept when not managed", gone, CommandReconcile, asRA, ours,
			Plan{Action: ActionSkip, Reason: "resource accounts not managed"}},
		{"not eligible resource account assignment is deleted when managed", gone, CommandReconcile, asRA, managed,
			Plan{Action: ActionRevoke, Reason: gone.Reason, Delete: true}},
		{"assignment of an unknown type is never touched", gone, CommandReconcile,
			&Assignment{ObjectID: decideOID, PrincipalType: "bot"}, managed,
			Plan{Action: ActionSkip, Reason: "assignment of unknown principal type"}},
		// Operator overrides.
		{"grant ignores eligibility and assigns a user", gone, CommandGrant, none, ours,
			Plan{Action: ActionGrant, Reason: "operator grant", Put: putNew(ourApp1, ourApp2)}},
		{"grant of a resource account assigns a resource account", ra, CommandGrant, none, ours,
			Plan{Action: ActionGrant, Reason: "operator grant", Put: &Assignment{PrincipalType: PrincipalResourceAccount}}},
		{"grant when already granted is a no-op", gone, CommandGrant, asUser(ourApp1, ourApp2, foreignApp), ours,
			Plan{Action: ActionNoop, Reason: "operator grant"}},
		{"grant keeps ownership: no converting another application's assignment", ra, CommandGrant,
			asUser(foreignApp), managed, Plan{Action: ActionSkip, Reason: "conflict: user assignment with other applications"}},
		{"revoke ignores eligibility and removes our ids", user, CommandRevoke, asUser(ourApp1, foreignApp), ours,
			Plan{Action: ActionRevoke, Reason: "operator revoke",
				Put: &Assignment{ObjectID: decideOID, PrincipalType: PrincipalUser, ClientIDs: []string{foreignApp}}}},
		{"revoke keeps ownership: resource accounts need management", ra, CommandRevoke, asRA, ours,
			Plan{Action: ActionSkip, Reason: "resource accounts not managed"}},
		{"revoke of a managed resource account deletes it", ra, CommandRevoke, asRA, managed,
			Plan{Action: ActionRevoke, Reason: "operator revoke", Delete: true}},
		{"revoke without assignment is a no-op", user, CommandRevoke, none, ours,
			Plan{Action: ActionNoop, Reason: "operator revoke"}},
		{"empty command reconciles", user, "", none, ours,
			Plan{Action: ActionGrant, Reason: user.Reason, Put: putNew(ourApp1, ourApp2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := cloneAssignment(tt.current)
			got := Decide(tt.verdict, tt.cmd, tt.current, tt.policy)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide() = %s, want %s", planString(got), planString(tt.want))
			}
			if !reflect.DeepEqual(tt.current, before) {
				t.Errorf("Decide modified the current assignment: %+v, was %+v", tt.current, before)
			}
			if got.Put != nil && got.Put.PrincipalType == PrincipalUser && len(got.Put.ClientIDs) == 0 {
				t.Errorf("Decide() plans a user assignment without client ids")
			}
		})
	}
}

func cloneAssignment(a *Assignment) *Assignment {
	if a == nil {
		return nil
	}
	c := *a
	c.ClientIDs = slices.Clone(a.ClientIDs)
	return &c
}

func planString(p Plan) string {
	s := string(p.Action) + " (" + p.Reason + ")"
	if p.Put != nil {
		s += " put " + string(p.Put.PrincipalType) + " " + p.Put.ObjectID + " [" + strings.Join(p.Put.ClientIDs, ",") + "]"
	}
	if p.Delete {
		s += " delete"
	}
	return s
}
