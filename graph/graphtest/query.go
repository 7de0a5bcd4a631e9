package graphtest

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userProps are the user properties the emulator knows, keyed by lower-case name (Graph
// matches $select case-insensitively) with their canonical spelling.
var userProps = map[string]string{
	"id":                "id",
	"userprincipalname": "userPrincipalName",
	"displayname":       "displayName",
	"accountenabled":    "accountEnabled",
	"usertype":          "userType",
	"department":        "department",
	"assignedlicenses":  "assignedLicenses",
	"assignedplans":     "assignedPlans",
	"deleteddatetime":   "deletedDateTime",
}

// defaultSelect is what Graph returns without $select among the properties the emulator
// stores: accountEnabled, assignedLicenses, assignedPlans, userType and department are
// returned only when selected.
var defaultSelect = []string{"id", "displayName", "userPrincipalName"}

// parseSelect returns the canonical property names of $select, or the default set.
func parseSelect(r *http.Request) ([]string, *apiError) {
	raw := r.URL.Query().Get("$select")
	if raw == "" {
		return defaultSelect, nil
	}
	var out []string
	for p := range strings.SplitSeq(raw, ",") {
		name, ok := userProps[strings.ToLower(strings.TrimSpace(p))]
		if !ok {
			return nil, badRequest("Request_BadRequest",
				fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.user'.", strings.TrimSpace(p)))
		}
		out = append(out, name)
	}
	return out, nil
}

// renderUser returns the JSON object for u holding only the selected properties, less
// those in strip (StripProperty).
func renderUser(u *UserRecord, sel, strip []string) map[string]any {
	m := make(map[string]any, len(sel))
	for _, p := range sel {
		if slices.Contains(strip, p) {
			continue
		}
		switch p {
		case "id":
			m[p] = u.ID
		case "userPrincipalName":
			m[p] = u.UserPrincipalName
		case "displayName":
			m[p] = nullable(u.DisplayName)
		case "accountEnabled":
			m[p] = u.AccountEnabled
		case "userType":
			m[p] = nullable(u.UserType)
		case "department":
			m[p] = nullable(u.Department)
		case "assignedLicenses":
			m[p] = renderLicenses(u.AssignedLicenses)
		case "assignedPlans":
			m[p] = renderPlans(u.AssignedPlans)
		case "deletedDateTime":
			m[p] = nil
			if !u.DeletedDateTime.IsZero() {
				m[p] = u.DeletedDateTime.UTC().Format(time.RFC3339)
			}
		}
	}
	return m
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func renderLicenses(ls []License) []map[string]any {
	out := make([]map[string]any, len(ls))
	for i, l := range ls {
		out[i] = map[string]any{"skuId": l.SkuID, "disabledPlans": []string{}}
	}
	return out
}

func renderPlans(ps []Plan) []map[string]any {
	out := make([]map[string]any, len(ps))
	for i, p := range ps {
		m := map[string]any{"servicePlanId": p.ServicePlanID, "service": p.Service, "capabilityStatus": p.CapabilityStatus}
		if !p.AssignedDateTime.IsZero() {
			m["assignedDateTime"] = p.AssignedDateTime.UTC().Format(time.RFC3339)
		}
		out[i] = m
	}
	return out
}

// userFilter is a parsed $filter: OR-ed any() lambdas on assignedPlans/servicePlanId and
// assignedLicenses/skuId. The zero value matches every user.
type userFilter struct {
	plans, skus map[string]bool
}

var anyTerm = regexp.MustCompile(`(?i)^(assignedPlans|assignedLicenses)/any\(\s*(\w+)\s*:\s*(\w+)/(servicePlanId|skuId)\s+eq\s+([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s*\)$`)

// parseFilter understands exactly the filters the graph package sends; anything else is
// a 400 Request_UnsupportedQuery, as Graph answers filters it cannot run.
func parseFilter(raw string) (userFilter, *apiError) {
	f := userFilter{plans: map[string]bool{}, skus: map[string]bool{}}
	if strings.TrimSpace(raw) == "" {
		return userFilter{}, nil
	}
	for term := range strings.SplitSeq(raw, " or ") {
		m := anyTerm.FindStringSubmatch(strings.TrimSpace(term))
		if m == nil || m[2] != m[3] {
			return userFilter{}, badRequest("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified: "+strings.TrimSpace(term))
		}
		coll, prop, id := strings.ToLower(m[1]), strings.ToLower(m[4]), strings.ToLower(m[5])
		switch {
		case coll == "assignedplans" && prop == "serviceplanid":
			f.plans[id] = true
		case coll == "assignedlicenses" && prop == "skuid":
			f.skus[id] = true
		default:
			return userFilter{}, badRequest("Request_BadRequest", "Could not find a property named '"+m[4]+"' on type '"+m[1]+"'.")
		}
	}
	return f, nil
}

// advanced reports whether the filter needs Graph's advanced query capabilities
// (ConsistencyLevel: eventual and $count=true): filtering on assignedPlans does.
func (f userFilter) advanced() bool { return len(f.plans) > 0 }

func (f userFilter) match(u *UserRecord) bool {
	if f.plans == nil {
		return true
	}
	for _, p := range u.AssignedPlans {
		if f.plans[p.ServicePlanID] {
			return true
		}
	}
	for _, l := range u.AssignedLicenses {
		if f.skus[l.SkuID] {
			return true
		}
	}
	return false
}

// pageSpec is the window of a listing one request asks for.
type pageSpec struct {
	offset, size int
	count        bool
}

// maxTop is the largest $top Graph accepts on directory object listings (paging docs);
// more is 400 Request_UnsupportedQuery with the message below (observed from the service).
const maxTop = 999

// parsePage reads $top (1..999, then capped at max: Options.MaxPageSize), $skiptoken and
// $count.
func parsePage(r *http.Request, def, max int) (pageSpec, *apiError) {
	q := r.URL.Query()
	p := pageSpec{size: def, count: strings.EqualFold(q.Get("$count"), "true")}
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return p, badRequest("Request_BadRequest", "Invalid value for $top: "+t)
		}
		if n < 1 || n > maxTop {
			return p, badRequest("Request_UnsupportedQuery", fmt.Sprintf("Invalid page size specified: '%d'. Must be between 1 and %d inclusive.", n, maxTop))
		}
		p.size = n
	}
	p.size = min(p.size, max)
	if s := q.Get("$skiptoken"); s != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(s, "X"))
		if err != nil || n < 0 {
			return p, badRequest("Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")
		}
		p.offset = n
	}
	return p, nil
}

// nextLink is the absolute URL of the page after this one: the request's URL with
// $skiptoken moved on.
func nextLink(r *http.Request, offset int) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	q := r.URL.Query()
	q.Set("$skiptoken", "X"+strconv.Itoa(offset))
	return scheme + "://" + r.Host + r.URL.Path + "?" + q.Encode()
}
