package worker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// RuleOutcome is how one eligibility rule judged a principal.
type RuleOutcome string

const (
	RulePass       RuleOutcome = "pass"        // the rule lets the principal through
	RuleFail       RuleOutcome = "fail"        // the rule refuses the principal
	RuleNotApplied RuleOutcome = "not applied" // the policy does not consult this rule here
	RuleInfo       RuleOutcome = "info"        // a supporting fact that decides nothing
)

// Rule is one eligibility rule's verdict on one principal. Decisive marks the rule whose
// outcome gave the verdict (the first refusal Eligibility stops at, or the rule that made
// the principal eligible).
type Rule struct {
	Name     string      `json:"rule"`
	Outcome  RuleOutcome `json:"outcome"`
	Detail   string      `json:"detail,omitempty"`
	Decisive bool        `json:"decisive,omitempty"`
}

// Explanation is every rule of the policy applied to one principal, in the order
// Eligibility applies them, and the verdict they give.
type Explanation struct {
	ObjectID string  `json:"objectId,omitempty"`
	UPN      string  `json:"userPrincipalName,omitempty"`
	Found    bool    `json:"found"`
	Verdict  Verdict `json:"-"`
	Rules    []Rule  `json:"rules"`
}

// teamsPlanNames and resourceAccountNames name the ids the policy matches on, for people.
var teamsPlanNames = map[string]string{
	"57ff2da0-773e-42df-b2af-ffb7a2317929": "TEAMS1",
	"4fa4026d-ce74-4962-a151-8e96d57ea8e4": "TEAMS_FREE",
	"304767db-7d23-49e8-a945-4a7eb65f9f28": "TEAMS_GOV",
	"495922d5-f138-498b-8967-4acdcdfb2a74": "TEAMS_GCCHIGH",
	"9953b155-8aef-4c56-92f3-72b0487fce41": "TEAMS_AR_GCCHIGH",
	"ec0dd2de-a877-4059-a9b8-5838b5629b2a": "TEAMS_DOD",
	"fd500458-c24c-478e-856c-a6067a8376cd": "TEAMS_AR_DOD",
}

var resourceAccountNames = map[string]string{
	"440eaaa8-b3e0-484b-a8be-62870b9ba70a": "PHONESYSTEM_VIRTUALUSER",
	"0e142028-345e-45da-8d92-8bfd4093bbb9": "PHONESYSTEM_VIRTUALUSER (faculty)",
	"2cf22bcb-0c9e-4bc6-8daf-7e7654c0f285": "PHONESYSTEM_VIRTUALUSER (GCC)",
	"e3f0522e-ebb7-4561-9f90-b44516d65b77": "PHONESYSTEM_VIRTUALUSER (GCC High)",
	"f47330e9-c134-43b3-9993-e7f004506889": "MCOEV_VIRTUALUSER",
	"0628a73f-3b4a-4989-bd7b-0f8823144313": "MCOEV_VIRTUALUSER (GCC)",
}

// Explain applies every rule of p to u, as Eligibility does, and says what each rule made
// of it. u is nil when the directory does not hold the principal. memberOf is which of
// p.ScopeGroups the user is a transitive member of (ignored when p has no scope groups).
// Explain's verdict is Eligibility's for the same inputs. Pure.
func Explain(u *User, memberOf []string, p Policy) Explanation {
	if u == nil {
		return Explanation{Verdict: Eligibility(nil, false, p), Rules: []Rule{
			{Name: "in directory", Outcome: RuleFail, Detail: "the directory holds no such user (deleted, or never existed)", Decisive: true}}}
	}
	inScope := len(p.ScopeGroups) == 0
	e := Explanation{ObjectID: strings.ToLower(u.ID), UPN: u.UPN, Found: true,
		Rules: []Rule{{Name: "in directory", Outcome: RulePass, Detail: "read now, with the policy's $select"}}}
	e.Rules = append(e.Rules, scopeRules(memberOf, p, &inScope)...)
	e.Verdict = Eligibility(u, inScope, p)
	ra := isResourceAccount(u)
	e.Rules = append(e.Rules, resourceAccountRules(u, ra)...)
	e.Rules = append(e.Rules, accountRules(u, ra, p)...)
	e.Rules = append(e.Rules, teamsRules(u.Plans, ra)...)
	markDecisive(e.Rules, e.Verdict)
	return e
}

// scopeRules says, for each scope group, whether the user is a member; inScope is set
// when any matched.
func scopeRules(memberOf []string, p Policy, inScope *bool) []Rule {
	if len(p.ScopeGroups) == 0 {
		return []Rule{{Name: "scope", Outcome: RuleNotApplied, Detail: "no scope groups: the whole tenant is in scope"}}
	}
	var out []Rule
	for _, g := range p.ScopeGroups {
		r := Rule{Name: "scope group " + strings.ToLower(g), Outcome: RuleFail, Detail: "not a transitive member"}
		if containsFold(memberOf, g) {
			r.Outcome, r.Detail, *inScope = RulePass, "transitive member", true
		}
		out = append(out, r)
	}
	return out
}

// resourceAccountRules lists the resource-account licences and plans the user holds.
func resourceAccountRules(u *User, ra bool) []Rule {
	var held []string
	for _, sku := range u.SKUs {
		if containsFold(ResourceAccountSKUs, sku) {
			held = append(held, fmt.Sprintf("licence %s (%s)", resourceAccountNames[strings.ToLower(sku)], strings.ToLower(sku)))
		}
	}
	for _, pl := range u.Plans {
		if containsFold(ResourceAccountPlanIDs, pl.ServicePlanID) {
			held = append(held, fmt.Sprintf("plan %s (%s) %s", resourceAccountNames[strings.ToLower(pl.ServicePlanID)],
				strings.ToLower(pl.ServicePlanID), cmp.Or(pl.CapabilityStatus, "without a status")))
		}
	}
	r := Rule{Name: "resource account licence or plan", Outcome: RuleFail, Detail: "none: not a resource account"}
	switch {
	case ra:
		r.Outcome, r.Detail = RulePass, strings.Join(held, "; ")
	case len(held) > 0:
		r.Detail = strings.Join(held, "; ") + ": no licence, and no plan enabled"
	}
	out := []Rule{r}
	if u.Department != "" {
		d := Rule{Name: "department", Outcome: RuleInfo, Detail: fmt.Sprintf("%q", u.Department)}
		if strings.EqualFold(u.Department, ResourceAccountDepartment) {
			d.Detail += " (what Teams gives online resource accounts; supports the licence, decides nothing)"
		}
		out = append(out, d)
	}
	return out
}

// accountRules are the account-enabled and guest rules; neither applies to a resource
// account.
func accountRules(u *User, ra bool, p Policy) []Rule {
	enabled := Rule{Name: "account enabled", Outcome: RulePass, Detail: "accountEnabled true"}
	if !u.AccountEnabled {
		enabled.Outcome, enabled.Detail = RuleFail, "accountEnabled false"
	}
	userType := cmp.Or(u.UserType, "Member")
	guest := Rule{Name: "guest", Outcome: RulePass, Detail: "userType " + userType}
	if strings.EqualFold(userType, "Guest") {
		guest.Outcome, guest.Detail = RuleFail, "userType Guest; guests are not eligible (TPE_ALLOW_GUESTS=false)"
		if p.AllowGuests {
			guest.Outcome, guest.Detail = RulePass, "userType Guest; guests are allowed (TPE_ALLOW_GUESTS=true)"
		}
	}
	if ra {
		enabled.Outcome, enabled.Detail = RuleNotApplied, enabled.Detail+"; resource accounts are disabled user objects by design"
		guest.Outcome = RuleNotApplied
	}
	return []Rule{enabled, guest}
}

// teamsRules has one rule per Teams plan the user holds, with its status, or one failing
// rule when there is none.
func teamsRules(plans []AssignedPlan, ra bool) []Rule {
	var out []Rule
	for _, pl := range plans {
		id := strings.ToLower(pl.ServicePlanID)
		if !containsFold(TeamsPlanIDs, id) {
			continue
		}
		r := Rule{Name: fmt.Sprintf("teams plan %s (%s)", teamsPlanNames[id], id), Outcome: RuleFail,
			Detail: "capabilityStatus " + cmp.Or(pl.CapabilityStatus, "(none)")}
		if strings.EqualFold(pl.CapabilityStatus, "Enabled") {
			r.Outcome = RulePass
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		out = []Rule{{Name: "teams plan", Outcome: RuleFail, Detail: "none of the Teams service plans is assigned"}}
	}
	if ra {
		for i := range out {
			out[i].Outcome = RuleNotApplied
			out[i].Detail += "; a resource account is judged by its licence"
		}
	}
	return out
}

// markDecisive flags the rule that gave the verdict: for an eligible principal the rule
// that made it so, otherwise the first refusal in Eligibility's order.
func markDecisive(rules []Rule, v Verdict) {
	pick := func(match func(Rule) bool) {
		if i := slices.IndexFunc(rules, match); i >= 0 {
			rules[i].Decisive = true
		}
	}
	prefix := func(p string, o RuleOutcome) func(Rule) bool {
		return func(r Rule) bool { return strings.HasPrefix(r.Name, p) && r.Outcome == o }
	}
	switch v.Reason {
	case reasonOutOfScope:
		for i := range rules {
			if strings.HasPrefix(rules[i].Name, "scope group ") {
				rules[i].Decisive = true // every group refused
			}
		}
	case reasonResourceAccount:
		pick(prefix("resource account", RulePass))
	case reasonAccountDisabled:
		pick(prefix("account enabled", RuleFail))
	case reasonGuest:
		pick(prefix("guest", RuleFail))
	case reasonTeamsPlanEnabled:
		pick(prefix("teams plan", RulePass))
	case reasonTeamsPlanSuspended, reasonNoTeamsPlan:
		for i := range rules {
			if strings.HasPrefix(rules[i].Name, "teams plan") && rules[i].Outcome == RuleFail {
				rules[i].Decisive = true
			}
		}
	}
}
