package graphtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// call sends one request with a bearer token and decodes the JSON answer.
func call(t *testing.T, method, u, body string, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer token")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header, m
}

func errorCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func sample(t *testing.T, opts ...graphtest.Option) *graphtest.Server {
	d, err := graphtest.LoadDirectoryFile(sampleFile)
	if err != nil {
		t.Fatal(err)
	}
	return graphtest.NewServer(t, d, opts...)
}

func TestSelect(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	tests := []struct {
		name   string
		query  string
		status int
		keys   []string
	}{
		{"default set hides policy properties", "", 200, []string{"@odata.context", "displayName", "id", "userPrincipalName"}},
		{"only what is selected", "?$select=id,accountEnabled,assignedPlans", 200, []string{"@odata.context", "accountEnabled", "assignedPlans", "id"}},
		{"names match case-insensitively", "?$select=ID,AssignedLicenses", 200, []string{"@odata.context", "assignedLicenses", "id"}},
		{"unknown property is 400", "?$select=id,mail2", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, m := call(t, "GET", srv.URL()+"/v1.0/users/adele.vance@contoso.example"+tt.query, "")
			if status != tt.status {
				t.Fatalf("status %d, want %d (%v)", status, tt.status, m)
			}
			if tt.status != 200 {
				if errorCode(m) != "Request_BadRequest" {
					t.Errorf("error code %q, want Request_BadRequest", errorCode(m))
				}
				return
			}
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tt.keys) {
				t.Errorf("keys %v, want %v", keys, tt.keys)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	eventual := []string{"ConsistencyLevel", "eventual"}
	tests := []struct {
		name   string
		filter string
		count  bool
		hdr    []string
		status int
		code   string
		n      int // users returned
	}{
		{"teams plan", "assignedPlans/any(p:p/servicePlanId eq " + graphtest.TeamsPlanID + ")", true, eventual, 200, "", 20},
		{"teams plan OR free plan", "assignedPlans/any(p:p/servicePlanId eq " + graphtest.TeamsPlanID + ") or assignedPlans/any(x:x/servicePlanId eq 4fa4026d-ce74-4962-a151-8e96d57ea8e4)", true, eventual, 200, "", 21},
		{"plans need the advanced query header", "assignedPlans/any(p:p/servicePlanId eq " + graphtest.TeamsPlanID + ")", true, nil, 400, "Request_UnsupportedQuery", 0},
		{"plans need $count", "assignedPlans/any(p:p/servicePlanId eq " + graphtest.TeamsPlanID + ")", false, eventual, 400, "Request_UnsupportedQuery", 0},
		{"resource account sku", "assignedLicenses/any(l:l/skuId eq " + graphtest.RASkuID + ")", false, nil, 200, "", 4},
		{"lambda variable must match", "assignedLicenses/any(l:x/skuId eq " + graphtest.RASkuID + ")", false, nil, 400, "Request_UnsupportedQuery", 0},
		{"quoted GUID is not Graph's syntax", "assignedLicenses/any(l:l/skuId eq '" + graphtest.RASkuID + "')", false, nil, 400, "Request_UnsupportedQuery", 0},
		{"other filters are unsupported", "accountEnabled eq true", false, nil, 400, "Request_UnsupportedQuery", 0},
		{"property of the wrong collection", "assignedLicenses/any(l:l/servicePlanId eq " + graphtest.RAPlanID + ")", false, nil, 400, "Request_BadRequest", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"$filter": {tt.filter}, "$select": {"id"}}
			if tt.count {
				q.Set("$count", "true")
			}
			status, _, m := call(t, "GET", srv.URL()+"/v1.0/users?"+q.Encode(), "", tt.hdr...)
			if status != tt.status || errorCode(m) != tt.code {
				t.Fatalf("status %d code %q, want %d %q", status, errorCode(m), tt.status, tt.code)
			}
			if v, _ := m["value"].([]any); len(v) != tt.n {
				t.Errorf("%d users, want %d", len(v), tt.n)
			}
			if tt.count && tt.status == 200 && m["@odata.count"] != float64(tt.n) {
				t.Errorf("@odata.count = %v, want %d", m["@odata.count"], tt.n)
			}
		})
	}
}

func TestPaging(t *testing.T) {
	t.Parallel()
	d := graphtest.Generate(95, 1, graphtest.Mix{})
	srv := graphtest.NewServer(t, d, func(o *graphtest.Options) { o.PageSize = 10; o.MaxPageSize = 30 })
	tests := []struct {
		name  string
		first string
		pages int
	}{
		{"default page size", "/v1.0/users?$select=id", 10},
		{"$top capped at the maximum", "/v1.0/users?$select=id&$top=999", 4},
		{"$top below the maximum", "/v1.0/users?$select=id&$top=25", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			next, pages := srv.URL()+tt.first, 0
			for next != "" {
				status, _, m := call(t, "GET", next, "")
				if status != 200 {
					t.Fatalf("page %d: status %d %v", pages, status, m)
				}
				pages++
				for _, v := range m["value"].([]any) {
					ids = append(ids, v.(map[string]any)["id"].(string))
				}
				next, _ = m["@odata.nextLink"].(string)
				if next != "" && !strings.HasPrefix(next, srv.URL()+"/v1.0/users?") {
					t.Fatalf("nextLink %q is not an absolute URL on the emulator", next)
				}
			}
			slices.Sort(ids)
			if pages != tt.pages || len(slices.Compact(ids)) != 95 {
				t.Errorf("%d pages, %d distinct users; want %d pages, 95 users", pages, len(slices.Compact(ids)), tt.pages)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	srv := sample(t, func(o *graphtest.Options) { o.Token = "token" })
	other := sample(t, func(o *graphtest.Options) { o.Token = "another" })
	u := "/v1.0/users/adele.vance@contoso.example"
	if status, _, _ := call(t, "GET", srv.URL()+u, ""); status != 200 {
		t.Errorf("right token: status %d", status)
	}
	status, _, m := call(t, "GET", other.URL()+u, "")
	if status != 401 || errorCode(m) != "InvalidAuthenticationToken" {
		t.Errorf("wrong token: status %d code %q, want 401 InvalidAuthenticationToken", status, errorCode(m))
	}
	resp, err := http.Get(srv.URL() + u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no token: status %d, want 401", resp.StatusCode)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	u := srv.URL() + "/v1.0/users/adele.vance@contoso.example"
	srv.FailNext(429, 1500*time.Millisecond)
	srv.FailNext(403, 0)
	status, h, m := call(t, "GET", u, "")
	if status != 429 || h.Get("Retry-After") != "1.5" || errorCode(m) != "TooManyRequests" {
		t.Errorf("first: %d Retry-After %q code %q, want 429, 1.5, TooManyRequests", status, h.Get("Retry-After"), errorCode(m))
	}
	inner := m["error"].(map[string]any)["innerError"].(map[string]any)
	if inner["request-id"] != h.Get("request-id") || h.Get("request-id") == "" {
		t.Errorf("innerError.request-id %v, header %q: want the same non-empty id", inner["request-id"], h.Get("request-id"))
	}
	if status, _, m := call(t, "GET", u, ""); status != 403 || errorCode(m) != "Authorization_RequestDenied" {
		t.Errorf("second: %d %q, want 403 Authorization_RequestDenied", status, errorCode(m))
	}
	if status, _, _ := call(t, "GET", u, ""); status != 200 {
		t.Errorf("third: %d, want 200 once the script ran out", status)
	}
	if got := srv.Calls("GET /v1.0/users/{id}"); got != 3 {
		t.Errorf("Calls = %d, want 3", got)
	}
	if st := srv.Requests()[0].Status; st != 429 {
		t.Errorf("request log status %d, want 429", st)
	}
}

func TestFaultRateIsSeeded(t *testing.T) {
	t.Parallel()
	run := func() []int {
		srv := sample(t, func(o *graphtest.Options) { o.FaultRate = 0.5; o.Seed = 9 })
		var out []int
		for range 40 {
			status, _, _ := call(t, "GET", srv.URL()+"/v1.0/users/adele.vance@contoso.example", "")
			out = append(out, status)
		}
		return out
	}
	a, b := run(), run()
	faults := 0
	for _, s := range a {
		if s != 200 {
			faults++
			if s != 429 && s != 500 && s != 503 {
				t.Errorf("fault status %d, want 429, 500 or 503", s)
			}
		}
	}
	if !slices.Equal(a, b) || faults < 10 || faults > 30 {
		t.Errorf("runs %v and %v: want identical with about half faults", a, b)
	}
}

func TestCheckMemberGroups(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	d := srv.Directory()
	agent := d.TransitiveUserMembers(graphtest.NestedGroupID)[0]
	body := `{"groupIds":["` + strings.ToUpper(graphtest.ScopeGroupID) + `","` + graphtest.NestedGroupID + `","0f0f0f0f-0000-4000-8000-000000000000"]}`
	status, _, m := call(t, "POST", srv.URL()+"/v1.0/users/"+agent+"/checkMemberGroups", body, "Content-Type", "application/json")
	if status != 200 || len(m["value"].([]any)) != 2 {
		t.Errorf("checkMemberGroups: %d %v, want both scope groups", status, m)
	}
	many := `{"groupIds":[` + strings.Repeat(`"a",`, 20) + `"b"]}`
	if status, _, _ := call(t, "POST", srv.URL()+"/v1.0/users/"+agent+"/checkMemberGroups", many); status != 400 {
		t.Errorf("21 group ids: status %d, want 400", status)
	}
	must(t, d.RemoveMember(graphtest.ScopeGroupID, graphtest.NestedGroupID))
	status, _, m = call(t, "POST", srv.URL()+"/v1.0/users/"+agent+"/checkMemberGroups", body)
	if status != 200 || len(m["value"].([]any)) != 1 {
		t.Errorf("after unnesting: %d %v, want only the nested group", status, m)
	}
}

func TestSubscriptionValidation(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	eg := "EventGrid:?azuresubscriptionid=6c1e2a3b&resourcegroup=rg&partnertopic=pt&location=westeurope"
	sub := func(resource, changeType, notify string, exp time.Time) string {
		b, _ := json.Marshal(map[string]any{"resource": resource, "changeType": changeType, "notificationUrl": notify,
			"clientState": "cs", "expirationDateTime": exp.Format(time.RFC3339Nano)})
		return string(b)
	}
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"event grid", sub("users", "updated,deleted", eg, now.Add(time.Hour)), 201},
		{"https webhook", sub("groups", "updated", "https://hooks.contoso.example/graph", now.Add(41760*time.Minute)), 201},
		{"duplicate resource and changeType, another URL", sub("USERS", "deleted,updated", "https://hooks.contoso.example/other", now.Add(time.Hour)), 409},
		{"http webhook", sub("users", "updated", "http://hooks.contoso.example/graph", now.Add(time.Hour)), 400},
		{"event grid without location", sub("users", "updated", "EventGrid:?azuresubscriptionid=a&resourcegroup=b&partnertopic=c", now.Add(time.Hour)), 400},
		{"unknown change type", sub("users", "updated,renamed", eg, now.Add(time.Hour)), 400},
		{"expired", sub("users/x", "updated", eg, now.Add(-time.Minute)), 400},
		{"too far", sub("users/x", "updated", eg, now.Add(41761*time.Minute)), 400},
		{"quota of two reached", sub("groups/g", "updated", eg, now.Add(time.Hour)), 403},
	}
	srv := sample(t, func(o *graphtest.Options) { o.Clock = func() time.Time { return now }; o.MaxSubscriptions = 2 })
	for _, tt := range tests {
		status, _, m := call(t, "POST", srv.URL()+"/v1.0/subscriptions", tt.body, "Content-Type", "application/json")
		if status != tt.status {
			t.Errorf("%s: status %d, want %d (%v)", tt.name, status, tt.status, m)
		}
	}
	if n := len(srv.Subscriptions()); n != 2 {
		t.Errorf("%d subscriptions held, want 2", n)
	}
}
