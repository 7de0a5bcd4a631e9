package worker

import (
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	t.Parallel()
	const (
		id     = "3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f"
		groupA = "aaaaaaaa-0000-4000-8000-000000000001"
		groupB = "bbbbbbbb-0000-4000-8000-000000000002"
	)
	with := func(u User, change func(*User)) *User { change(&u); return &u }
	scoped := Policy{ScopeGroups: []string{groupA, groupB}}
	tests := []struct {
		name     string
		user     *User
		memberOf []string
		policy   Policy
		want     Verdict
		// rules maps a rule name prefix to the outcome it must have; decisive lists the
		// prefixes of the rules that must be marked decisive, and no other may be.
		rules    map[string]RuleOutcome
		decisive []string
	}{
		{"absent user", nil, nil, Policy{}, Verdict{Reason: reasonNotFound},
			map[string]RuleOutcome{"in directory": RuleFail}, []string{"in directory"}},
		{"eligible teams user, whole tenant", refUser(fxTeamsUser(id)), nil, Policy{}, Verdict{PrincipalUser, reasonTeamsPlanEnabled},
			map[string]RuleOutcome{"scope": RuleNotApplied, "account enabled": RulePass, "guest": RulePass,
				"teams plan TEAMS1": RulePass, "resource account": RuleFail},
			[]string{"teams plan TEAMS1"}},
		{"member of the second scope group only", refUser(fxTeamsUser(id)), []string{strings.ToUpper(groupB)}, scoped,
			Verdict{PrincipalUser, reasonTeamsPlanEnabled},
			map[string]RuleOutcome{"scope group " + groupA: RuleFail, "scope group " + groupB: RulePass},
			[]string{"teams plan TEAMS1"}},
		{"out of scope names every group", refUser(fxTeamsUser(id)), nil, scoped, Verdict{Reason: reasonOutOfScope},
			map[string]RuleOutcome{"scope group " + groupA: RuleFail, "scope group " + groupB: RuleFail, "teams plan TEAMS1": RulePass},
			[]string{"scope group " + groupA, "scope group " + groupB}},
		{"disabled user", with(fxTeamsUser(id), func(u *User) { u.AccountEnabled = false }), nil, Policy{},
			Verdict{Reason: reasonAccountDisabled},
			map[string]RuleOutcome{"account enabled": RuleFail, "teams plan TEAMS1": RulePass}, []string{"account enabled"}},
		{"guest refused", with(fxTeamsUser(id), func(u *User) { u.UserType = "Guest" }), nil, Policy{},
			Verdict{Reason: reasonGuest}, map[string]RuleOutcome{"guest": RuleFail}, []string{"guest"}},
		{"guest allowed", with(fxTeamsUser(id), func(u *User) { u.UserType = "Guest" }), nil, Policy{AllowGuests: true},
			Verdict{PrincipalUser, reasonTeamsPlanEnabled}, map[string]RuleOutcome{"guest": RulePass}, []string{"teams plan TEAMS1"}},
		{"suspended plan next to a deleted one: both listed", with(fxTeamsUser(id), func(u *User) {
			u.Plans = []AssignedPlan{{ServicePlanID: teams1, CapabilityStatus: "Suspended"},
				{ServicePlanID: "4fa4026d-ce74-4962-a151-8e96d57ea8e4", CapabilityStatus: "Deleted"}}
		}), nil, Policy{}, Verdict{Reason: reasonTeamsPlanSuspended},
			map[string]RuleOutcome{"teams plan TEAMS1": RuleFail, "teams plan TEAMS_FREE": RuleFail},
			[]string{"teams plan TEAMS1", "teams plan TEAMS_FREE"}},
		{"no teams plan", with(fxTeamsUser(id), func(u *User) { u.Plans = nil }), nil, Policy{},
			Verdict{Reason: reasonNoTeamsPlan}, map[string]RuleOutcome{"teams plan": RuleFail}, []string{"teams plan"}},
		{"resource account: disabled by design, account rules not applied", refUser(fxResourceAccount(id)), nil, Policy{},
			Verdict{PrincipalResourceAccount, reasonResourceAccount},
			map[string]RuleOutcome{"resource account": RulePass, "account enabled": RuleNotApplied, "guest": RuleNotApplied,
				"teams plan": RuleNotApplied, "department": RuleInfo},
			[]string{"resource account"}},
		{"resource account by an enabled plan", with(fxResourceAccount(id), func(u *User) {
			u.SKUs, u.Plans = nil, []AssignedPlan{fxEnabled(raPlan)}
		}), nil, Policy{}, Verdict{PrincipalResourceAccount, reasonResourceAccount},
			map[string]RuleOutcome{"resource account": RulePass}, []string{"resource account"}},
		{"suspended resource-account plan and the department alone make no resource account", with(fxResourceAccount(id), func(u *User) {
			u.SKUs, u.Plans = nil, []AssignedPlan{{ServicePlanID: raPlan, CapabilityStatus: "Suspended"}}
		}), nil, Policy{}, Verdict{Reason: reasonAccountDisabled},
			map[string]RuleOutcome{"resource account": RuleFail, "department": RuleInfo, "account enabled": RuleFail},
			[]string{"account enabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Explain(tt.user, tt.memberOf, tt.policy)
			inScope := len(tt.policy.ScopeGroups) == 0 || len(tt.memberOf) > 0
			if want := Eligibility(tt.user, inScope, tt.policy); got.Verdict != want {
				t.Errorf("Explain verdict %+v differs from Eligibility's %+v", got.Verdict, want)
			}
			if got.Verdict != tt.want {
				t.Errorf("verdict = %+v, want %+v", got.Verdict, tt.want)
			}
			if got.Found != (tt.user != nil) {
				t.Errorf("Found = %v", got.Found)
			}
			for prefix, want := range tt.rules {
				r, ok := findRule(got.Rules, prefix)
				if !ok {
					t.Errorf("no rule %q in %+v", prefix, got.Rules)
				} else if r.Outcome != want {
					t.Errorf("rule %q = %s (%s), want %s", r.Name, r.Outcome, r.Detail, want)
				}
			}
			var decisive []string
			for _, r := range got.Rules {
				if r.Decisive {
					decisive = append(decisive, r.Name)
				}
			}
			if len(decisive) != len(tt.decisive) {
				t.Fatalf("decisive rules = %q, want ones starting %q", decisive, tt.decisive)
			}
			for i, p := range tt.decisive {
				if !strings.HasPrefix(decisive[i], p) {
					t.Errorf("decisive rule %d = %q, want one starting %q", i, decisive[i], p)
				}
			}
		})
	}
}

func findRule(rules []Rule, prefix string) (Rule, bool) {
	for _, r := range rules {
		if strings.HasPrefix(r.Name, prefix) {
			return r, true
		}
	}
	return Rule{}, false
}
