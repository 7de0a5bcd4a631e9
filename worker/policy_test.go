package worker

import (
	"strings"
	"testing"
)

const (
	teams1     = "57ff2da0-773e-42df-b2af-ffb7a2317929"
	raSKU      = "440eaaa8-b3e0-484b-a8be-62870b9ba70a"
	raPlan     = "f47330e9-c134-43b3-9993-e7f004506889"
	exchangeID = "efb87545-963c-4e0d-99df-69c6916d9eb0" // EXCHANGE_S_ENTERPRISE, not Teams
)

func fxEnabled(id string) AssignedPlan {
	return AssignedPlan{ServicePlanID: id, CapabilityStatus: "Enabled"}
}

func fxTeamsUser(id string) User {
	return User{ID: id, UPN: "u-" + id[:8] + "@contoso.com", AccountEnabled: true, UserType: "Member",
		Plans: []AssignedPlan{fxEnabled(exchangeID), {ServicePlanID: teams1, CapabilityStatus: "Enabled", Service: "TeamspaceAPI"}}}
}

func fxResourceAccount(id string) User {
	return User{ID: id, UPN: "ra-" + id[:8] + "@contoso.com", AccountEnabled: false,
		Department: ResourceAccountDepartment, SKUs: []string{raSKU}}
}

func TestEligibility(t *testing.T) {
	t.Parallel()
	const id = "3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f"
	with := func(u User, change func(*User)) *User { change(&u); return &u }
	tests := []struct {
		name    string
		user    *User
		inScope bool
		policy  Policy
		want    Verdict
	}{
		{"missing user is not eligible", nil, true, Policy{}, Verdict{Reason: "not found in directory"}},
		{"teams user with an enabled plan", refUser(fxTeamsUser(id)), true, Policy{}, Verdict{PrincipalUser, "teams plan enabled"}},
		{"plan ids and status match in any case", with(fxTeamsUser(id), func(u *User) {
			u.Plans = []AssignedPlan{{ServicePlanID: strings.ToUpper(teams1), CapabilityStatus: "ENABLED"}}
		}), true, Policy{}, Verdict{PrincipalUser, "teams plan enabled"}},
		{"teams user out of scope", refUser(fxTeamsUser(id)), false, Policy{}, Verdict{Reason: "out of scope"}},
		{"disabled teams user", with(fxTeamsUser(id), func(u *User) { u.AccountEnabled = false }), true, Policy{},
			Verdict{Reason: "account disabled"}},
		{"suspended teams plan", with(fxTeamsUser(id), func(u *User) {
			u.Plans = []AssignedPlan{{ServicePlanID: teams1, CapabilityStatus: "Suspended"}}
		}), true, Policy{}, Verdict{Reason: "teams plan suspended"}},
		{"deleted teams plan next to an enabled one is still enabled", with(fxTeamsUser(id), func(u *User) {
			u.Plans = []AssignedPlan{{ServicePlanID: teams1, CapabilityStatus: "Deleted"}, fxEnabled("4fa4026d-ce74-4962-a151-8e96d57ea8e4")}
		}), true, Policy{}, Verdict{PrincipalUser, "teams plan enabled"}},
		{"no plans at all", with(fxTeamsUser(id), func(u *User) { u.Plans = nil }), true, Policy{}, Verdict{Reason: "no teams plan"}},
		{"a Teams service name on another plan id does not count", with(fxTeamsUser(id), func(u *User) {
			u.Plans = []AssignedPlan{{ServicePlanID: exchangeID, CapabilityStatus: "Enabled", Service: "MicrosoftTeams"}}
		}), true, Policy{}, Verdict{Reason: "no teams plan"}},
		{"guest", with(fxTeamsUser(id), func(u *User) { u.UserType = "guest" }), true, Policy{}, Verdict{Reason: "guest"}},
		{"guest when guests are allowed", with(fxTeamsUser(id), func(u *User) { u.UserType = "Guest" }), true,
			Policy{AllowGuests: true}, Verdict{PrincipalUser, "teams plan enabled"}},
		{"empty user type is a member", with(fxTeamsUser(id), func(u *User) { u.UserType = "" }), true, Policy{},
			Verdict{PrincipalUser, "teams plan enabled"}},
		{"resource account by licence, disabled by design", refUser(fxResourceAccount(id)), true, Policy{},
			Verdict{PrincipalResourceAccount, "resource account licence"}},
		{"resource account licence id in upper case", with(fxResourceAccount(id), func(u *User) { u.SKUs = []string{strings.ToUpper(raSKU)} }),
			true, Policy{}, Verdict{PrincipalResourceAccount, "resource account licence"}},
		{"resource account by enabled plan", with(fxResourceAccount(id), func(u *User) { u.SKUs, u.Plans = nil, []AssignedPlan{fxEnabled(raPlan)} }),
			true, Policy{}, Verdict{PrincipalResourceAccount, "resource account licence"}},
		{"resource account plan suspended without licence", with(fxResourceAccount(id), func(u *User) {
			u.SKUs, u.Plans = nil, []AssignedPlan{{ServicePlanID: raPlan, CapabilityStatus: "Suspended"}}
		}), true, Policy{}, Verdict{Reason: "account disabled"}},
		{"department alone does not make a resource account", with(fxResourceAccount(id), func(u *User) { u.SKUs = nil }),
			true, Policy{}, Verdict{Reason: "account disabled"}},
		{"resource account out of scope", refUser(fxResourceAccount(id)), false, Policy{}, Verdict{Reason: "out of scope"}},
		{"licensed user who is also a resource account is a resource account", with(fxTeamsUser(id), func(u *User) { u.SKUs = []string{raSKU} }),
			true, Policy{}, Verdict{PrincipalResourceAccount, "resource account licence"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Eligibility(tt.user, tt.inScope, tt.policy); got != tt.want {
				t.Errorf("Eligibility() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEligibilityKnowsEveryTeamsPlan(t *testing.T) {
	t.Parallel()
	for _, plan := range TeamsPlanIDs {
		u := fxTeamsUser("3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f")
		u.Plans = []AssignedPlan{fxEnabled(plan)}
		if got := Eligibility(&u, true, Policy{}); got.Type != PrincipalUser {
			t.Errorf("plan %s: Eligibility() = %+v, want a Teams user", plan, got)
		}
	}
	for _, sku := range ResourceAccountSKUs {
		u := fxResourceAccount("3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f")
		u.SKUs = []string{sku}
		if got := Eligibility(&u, true, Policy{}); got.Type != PrincipalResourceAccount {
			t.Errorf("sku %s: Eligibility() = %+v, want a resource account", sku, got)
		}
	}
}

func refUser(u User) *User { return &u }
