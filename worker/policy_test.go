package worker_test

import (
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

const (
	teams1     = "57ff2da0-773e-42df-b2af-ffb7a2317929"
	raSKU      = "440eaaa8-b3e0-484b-a8be-62870b9ba70a"
	raPlan     = "f47330e9-c134-43b3-9993-e7f004506889"
	exchangeID = "efb87545-963c-4e0d-99df-69c6916d9eb0" // EXCHANGE_S_ENTERPRISE, not Teams
)

func fxEnabled(id string) worker.AssignedPlan {
	return worker.AssignedPlan{ServicePlanID: id, CapabilityStatus: "Enabled"}
}

func fxTeamsUser(id string) worker.User {
	return worker.User{ID: id, UPN: "u-" + id[:8] + "@contoso.com", AccountEnabled: true, UserType: "Member",
		Plans: []worker.AssignedPlan{fxEnabled(exchangeID), {ServicePlanID: teams1, CapabilityStatus: "Enabled", Service: "TeamspaceAPI"}}}
}

func fxResourceAccount(id string) worker.User {
	return worker.User{ID: id, UPN: "ra-" + id[:8] + "@contoso.com", AccountEnabled: false,
		Department: worker.ResourceAccountDepartment, SKUs: []string{raSKU}}
}

func TestEligibility(t *testing.T) {
	t.Parallel()
	const id = "3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f"
	tests := []struct {
		name    string
		user    *worker.User
		inScope bool
		policy  worker.Policy
		want    worker.Verdict
	}{
		{"missing user is not eligible", nil, true, worker.Policy{}, worker.Verdict{Reason: "not found in directory"}},
		{"teams user with an enabled plan", refUser(fxTeamsUser(id)), true, worker.Policy{}, worker.Verdict{worker.PrincipalUser, "teams plan enabled"}},
		{"plan ids and status match in any case", with(fxTeamsUser(id), func(u *worker.User) {
			u.Plans = []worker.AssignedPlan{{ServicePlanID: strings.ToUpper(teams1), CapabilityStatus: "ENABLED"}}
		}), true, worker.Policy{}, worker.Verdict{worker.PrincipalUser, "teams plan enabled"}},
		{"teams user out of scope", refUser(fxTeamsUser(id)), false, worker.Policy{}, worker.Verdict{Reason: "out of scope"}},
		{"disabled teams user", with(fxTeamsUser(id), func(u *worker.User) { u.AccountEnabled = false }), true, worker.Policy{},
			worker.Verdict{Reason: "account disabled"}},
		{"suspended teams plan", with(fxTeamsUser(id), func(u *worker.User) {
			u.Plans = []worker.AssignedPlan{{ServicePlanID: teams1, CapabilityStatus: "Suspended"}}
		}), true, worker.Policy{}, worker.Verdict{Reason: "teams plan suspended"}},
		{"deleted teams plan next to an enabled one is still enabled", with(fxTeamsUser(id), func(u *worker.User) {
			u.Plans = []worker.AssignedPlan{{ServicePlanID: teams1, CapabilityStatus: "Deleted"}, fxEnabled("4fa4026d-ce74-4962-a151-8e96d57ea8e4")}
		}), true, worker.Policy{}, worker.Verdict{worker.PrincipalUser, "teams plan enabled"}},
		{"no plans at all", with(fxTeamsUser(id), func(u *worker.User) { u.Plans = nil }), true, worker.Policy{}, worker.Verdict{Reason: "no teams plan"}},
		{"a Teams service name on another plan id does not count", with(fxTeamsUser(id), func(u *worker.User) {
			u.Plans = []worker.AssignedPlan{{ServicePlanID: exchangeID, CapabilityStatus: "Enabled", Service: "MicrosoftTeams"}}
		}), true, worker.Policy{}, worker.Verdict{Reason: "no teams plan"}},
		{"guest", with(fxTeamsUser(id), func(u *worker.User) { u.UserType = "guest" }), true, worker.Policy{}, worker.Verdict{Reason: "guest"}},
		{"guest when guests are allowed", with(fxTeamsUser(id), func(u *worker.User) { u.UserType = "Guest" }), true,
			worker.Policy{AllowGuests: true}, worker.Verdict{worker.PrincipalUser, "teams plan enabled"}},
		{"empty user type is a member", with(fxTeamsUser(id), func(u *worker.User) { u.UserType = "" }), true, worker.Policy{},
			worker.Verdict{worker.PrincipalUser, "teams plan enabled"}},
		{"resource account by licence, disabled by design", refUser(fxResourceAccount(id)), true, worker.Policy{},
			worker.Verdict{worker.PrincipalResourceAccount, "resource account licence"}},
		{"resource account licence id in upper case", with(fxResourceAccount(id), func(u *worker.User) { u.SKUs = []string{strings.ToUpper(raSKU)} }),
			true, worker.Policy{}, worker.Verdict{worker.PrincipalResourceAccount, "resource account licence"}},
		{"resource account by enabled plan", with(fxResourceAccount(id), func(u *worker.User) { u.SKUs, u.Plans = nil, []worker.AssignedPlan{fxEnabled(raPlan)} }),
			true, worker.Policy{}, worker.Verdict{worker.PrincipalResourceAccount, "resource account licence"}},
		{"resource account plan suspended without licence", with(fxResourceAccount(id), func(u *worker.User) {
			u.SKUs, u.Plans = nil, []worker.AssignedPlan{{ServicePlanID: raPlan, CapabilityStatus: "Suspended"}}
		}), true, worker.Policy{}, worker.Verdict{Reason: "account disabled"}},
		{"department alone does not make a resource account", with(fxResourceAccount(id), func(u *worker.User) { u.SKUs = nil }),
			true, worker.Policy{}, worker.Verdict{Reason: "account disabled"}},
		{"resource account out of scope", refUser(fxResourceAccount(id)), false, worker.Policy{}, worker.Verdict{Reason: "out of scope"}},
		{"licensed user who is also a resource account is a resource account", with(fxTeamsUser(id), func(u *worker.User) { u.SKUs = []string{raSKU} }),
			true, worker.Policy{}, worker.Verdict{worker.PrincipalResourceAccount, "resource account licence"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := worker.Eligibility(tt.user, tt.inScope, tt.policy); got != tt.want {
				t.Errorf("Eligibility() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEligibilityKnowsEveryTeamsPlan(t *testing.T) {
	t.Parallel()
	for _, plan := range worker.TeamsPlanIDs {
		u := fxTeamsUser("3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f")
		u.Plans = []worker.AssignedPlan{fxEnabled(plan)}
		if got := worker.Eligibility(&u, true, worker.Policy{}); got.Type != worker.PrincipalUser {
			t.Errorf("plan %s: Eligibility() = %+v, want a Teams user", plan, got)
		}
	}
	for _, sku := range worker.ResourceAccountSKUs {
		u := fxResourceAccount("3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f")
		u.SKUs = []string{sku}
		if got := worker.Eligibility(&u, true, worker.Policy{}); got.Type != worker.PrincipalResourceAccount {
			t.Errorf("sku %s: Eligibility() = %+v, want a resource account", sku, got)
		}
	}
}

func refUser(u worker.User) *worker.User { return &u }

// with returns a copy of u changed by change.
func with(u worker.User, change func(*worker.User)) *worker.User {
	change(&u)
	return &u
}
