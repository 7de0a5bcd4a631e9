package worker_test

import (
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func TestExplain(t *testing.T) {
	t.Parallel()
	const (
		id     = "3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f"
		groupA = "aaaaaaaa-0000-4000-8000-000000000001"
		groupB = "bbbbbbbb-0000-4000-8000-000000000002"
	)
	scoped := worker.Policy{ScopeGroups: []string{groupA, groupB}}
	tests := []struct {
		name     string
		user     *worker.User
		memberOf []string
		policy   worker.Policy
		want     worker.Verdict
		// rules maps a rule name prefix to the outcome it must have; decisive lists the
		// prefixes of the rules that must be marked decisive, and no other may be.
		rules    map[string]worker.RuleOutcome
		decisive []string
	}{
		{"absent user", nil, nil, worker.Policy{}, worker.Verdict{Reason: "not found in directory"},
			map[string]worker.RuleOutcome{"in directory": worker.RuleFail}, []string{"in directory"}},
		{"eligible teams user, whole tenant", refUser(fxTeamsUser(id)), nil, worker.Policy{}, worker.Verdict{worker.PrincipalUser, "teams plan enabled"},
			map[string]worker.RuleOutcome{"scope": worker.RuleNotApplied, "account enabled": worker.RulePass, "guest": worker.RulePass,
				"teams plan TEAMS1": worker.RulePass, "resource account": worker.RuleFail},
			[]string{"teams plan TEAMS1"}},
		{"member of the second scope group only", refUser(fxTeamsUser(id)), []string{strings.ToUpper(groupB)}, scoped,
			worker.Verdict{worker.PrincipalUser, "teams plan enabled"},
			map[string]worker.RuleOutcome{"scope group " + groupA: worker.RuleFail, "scope group " + groupB: worker.RulePass},
			[]string{"teams plan TEAMS1"}},
		{"out of scope names every group", refUser(fxTeamsUser(id)), nil, scoped, worker.Verdict{Reason: "out of scope"},
			map[string]worker.RuleOutcome{"scope group " + groupA: worker.RuleFail, "scope group " + groupB: worker.RuleFail, "teams plan TEAMS1": worker.RulePass},
			[]string{"scope group " + groupA, "scope group " + groupB}},
		{"disabled user", with(fxTeamsUser(id), func(u *worker.User) { u.AccountEnabled = false }), nil, worker.Policy{},
			worker.Verdict{Reason: "account disabled"},
			map[string]worker.RuleOutcome{"account enabled": worker.RuleFail, "teams plan TEAMS1": worker.RulePass}, []string{"account enabled"}},
		{"guest refused", with(fxTeamsUser(id), func(u *worker.User) { u.UserType = "Guest" }), nil, worker.Policy{},
			worker.Verdict{Reason: "guest"}, map[string]worker.RuleOutcome{"guest": worker.RuleFail}, []string{"guest"}},
		{"guest allowed", with(fxTeamsUser(id), func(u *worker.User) { u.UserType = "Guest" }), nil, worker.Policy{AllowGuests: true},
			worker.Verdict{worker.PrincipalUser, "teams plan enabled"}, map[string]worker.RuleOutcome{"guest": worker.RulePass}, []string{"teams plan TEAMS1"}},
		{"suspended plan next to a deleted one: both listed", with(fxTeamsUser(id), func(u *worker.User) {
			u.Plans = []worker.AssignedPlan{{ServicePlanID: teams1, CapabilityStatus: "Suspended"},
				{ServicePlanID: "4fa4026d-ce74-4962-a151-8e96d57ea8e4", CapabilityStatus: "Deleted"}}
		}), nil, worker.Policy{}, worker.Verdict{Reason: "teams plan suspended"},
			map[string]worker.RuleOutcome{"teams plan TEAMS1": worker.RuleFail, "teams plan TEAMS_FREE": worker.RuleFail},
			[]string{"teams plan TEAMS1", "teams plan TEAMS_FREE"}},
		{"no teams plan", with(fxTeamsUser(id), func(u *worker.User) { u.Plans = nil }), nil, worker.Policy{},
			worker.Verdict{Reason: "no teams plan"}, map[string]worker.RuleOutcome{"teams plan": worker.RuleFail}, []string{"teams plan"}},
		{"resource account: disabled by design, account rules not applied", refUser(fxResourceAccount(id)), nil, worker.Policy{},
			worker.Verdict{worker.PrincipalResourceAccount, "resource account licence"},
			map[string]worker.RuleOutcome{"resource account": worker.RulePass, "account enabled": worker.RuleNotApplied, "guest": worker.RuleNotApplied,
				"teams plan": worker.RuleNotApplied, "department": worker.RuleInfo},
			[]string{"resource account"}},
		{"resource account by an enabled plan", with(fxResourceAccount(id), func(u *worker.User) {
			u.SKUs, u.Plans = nil, []worker.AssignedPlan{fxEnabled(raPlan)}
		}), nil, worker.Policy{}, worker.Verdict{worker.PrincipalResourceAccount, "resource account licence"},
			map[string]worker.RuleOutcome{"resource account": worker.RulePass}, []string{"resource account"}},
		{"suspended resource-account plan and the department alone make no resource account", with(fxResourceAccount(id), func(u *worker.User) {
			u.SKUs, u.Plans = nil, []worker.AssignedPlan{{ServicePlanID: raPlan, CapabilityStatus: "Suspended"}}
		}), nil, worker.Policy{}, worker.Verdict{Reason: "account disabled"},
			map[string]worker.RuleOutcome{"resource account": worker.RuleFail, "department": worker.RuleInfo, "account enabled": worker.RuleFail},
			[]string{"account enabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := worker.Explain(tt.user, tt.memberOf, tt.policy)
			inScope := len(tt.policy.ScopeGroups) == 0 || len(tt.memberOf) > 0
			if want := worker.Eligibility(tt.user, inScope, tt.policy); got.Verdict != want {
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

func findRule(rules []worker.Rule, prefix string) (worker.Rule, bool) {
	for _, r := range rules {
		if strings.HasPrefix(r.Name, prefix) {
			return r, true
		}
	}
	return worker.Rule{}, false
}
