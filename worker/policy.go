package worker

import "strings"

// TeamsPlanIDs are the Teams service plan ids (assignedPlans[].servicePlanId) that make a
// user a Teams user when their capabilityStatus is "Enabled": TEAMS1, TEAMS_FREE, TEAMS_GOV,
// TEAMS_GCCHIGH, TEAMS_AR_GCCHIGH, TEAMS_DOD, TEAMS_AR_DOD. The policy matches on these ids,
// never on service names.
var TeamsPlanIDs = []string{
	"57ff2da0-773e-42df-b2af-ffb7a2317929", // TEAMS1
	"4fa4026d-ce74-4962-a151-8e96d57ea8e4", // TEAMS_FREE
	"304767db-7d23-49e8-a945-4a7eb65f9f28", // TEAMS_GOV
	"495922d5-f138-498b-8967-4acdcdfb2a74", // TEAMS_GCCHIGH
	"9953b155-8aef-4c56-92f3-72b0487fce41", // TEAMS_AR_GCCHIGH
	"ec0dd2de-a877-4059-a9b8-5838b5629b2a", // TEAMS_DOD
	"fd500458-c24c-478e-856c-a6067a8376cd", // TEAMS_AR_DOD
}

// ResourceAccountSKUs are the Teams Phone Resource Account licence SKU ids
// (assignedLicenses[].skuId): PHONESYSTEM_VIRTUALUSER and its faculty, GCC and GCC High
// variants.
var ResourceAccountSKUs = []string{
	"440eaaa8-b3e0-484b-a8be-62870b9ba70a", // PHONESYSTEM_VIRTUALUSER
	"0e142028-345e-45da-8d92-8bfd4093bbb9", // faculty
	"2cf22bcb-0c9e-4bc6-8daf-7e7654c0f285", // GCC
	"e3f0522e-ebb7-4561-9f90-b44516d65b77", // GCC High
}

// ResourceAccountPlanIDs are the MCOEV_VIRTUALUSER service plan ids (commercial and GCC)
// that mark a resource account when enabled.
var ResourceAccountPlanIDs = []string{
	"f47330e9-c134-43b3-9993-e7f004506889", // MCOEV_VIRTUALUSER
	"0628a73f-3b4a-4989-bd7b-0f8823144313", // MCOEV_VIRTUALUSER GCC
}

// ResourceAccountDepartment is the department Teams gives online resource accounts. It only
// supports the licence signal; on its own it proves nothing (anyone can set a department).
const ResourceAccountDepartment = "Microsoft Communication Application Instance"

// Eligibility reasons: short, stable phrases for the audit log and metrics.
const (
	reasonTeamsPlanEnabled   = "teams plan enabled"
	reasonResourceAccount    = "resource account licence"
	reasonAccountDisabled    = "account disabled"
	reasonGuest              = "guest"
	reasonNoTeamsPlan        = "no teams plan"
	reasonTeamsPlanSuspended = "teams plan suspended"
	reasonOutOfScope         = "out of scope"
	reasonNotFound           = "not found in directory"
)

// Verdict is the policy's answer for one principal. A zero Type means not eligible.
type Verdict struct {
	Type   PrincipalType // PrincipalUser, PrincipalResourceAccount, or "" (not eligible)
	Reason string
}

// Eligibility applies the policy to a user read from the directory now. u is nil when the
// directory says the principal does not exist; inScope says whether the user is a transitive
// member of the policy's scope groups (pass true when the policy has none). A user who is both
// a licensed Teams user and a resource account is judged a resource account. Pure.
func Eligibility(u *User, inScope bool, p Policy) Verdict {
	switch {
	case u == nil:
		return Verdict{Reason: reasonNotFound}
	case !inScope:
		return Verdict{Reason: reasonOutOfScope}
	case isResourceAccount(u):
		// Resource accounts are disabled user objects by design: accountEnabled is ignored.
		return Verdict{Type: PrincipalResourceAccount, Reason: reasonResourceAccount}
	case !u.AccountEnabled:
		return Verdict{Reason: reasonAccountDisabled}
	case strings.EqualFold(u.UserType, "Guest") && !p.AllowGuests:
		return Verdict{Reason: reasonGuest}
	}
	return teamsVerdict(u.Plans)
}

// teamsVerdict looks for an enabled Teams plan; a Teams plan present in any other state is
// reported as suspended so the audit log says why the user lost access.
func teamsVerdict(plans []AssignedPlan) Verdict {
	sawTeams := false
	for _, pl := range plans {
		if !containsFold(TeamsPlanIDs, pl.ServicePlanID) {
			continue
		}
		if strings.EqualFold(pl.CapabilityStatus, "Enabled") {
			return Verdict{Type: PrincipalUser, Reason: reasonTeamsPlanEnabled}
		}
		sawTeams = true
	}
	if sawTeams {
		return Verdict{Reason: reasonTeamsPlanSuspended}
	}
	return Verdict{Reason: reasonNoTeamsPlan}
}

// isResourceAccount reports whether u holds a resource account licence SKU or an enabled
// resource account service plan. The department is not consulted: it is a supporting signal
// that alone would let anyone who can edit a profile claim server consent.
func isResourceAccount(u *User) bool {
	for _, sku := range u.SKUs {
		if containsFold(ResourceAccountSKUs, sku) {
			return true
		}
	}
	for _, pl := range u.Plans {
		if containsFold(ResourceAccountPlanIDs, pl.ServicePlanID) &&
			strings.EqualFold(pl.CapabilityStatus, "Enabled") {
			return true
		}
	}
	return false
}

// containsFold reports whether list holds s, ignoring letter case (GUIDs arrive in either).
func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
