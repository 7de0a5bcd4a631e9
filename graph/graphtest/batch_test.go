package graphtest_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// batchResponses posts body to /v1.0/$batch and returns the envelope's status, the inner
// responses by id and the order they came in.
func batchResponses(t *testing.T, srv *graphtest.Server, body string) (int, map[string]map[string]any, []string, map[string]any) {
	t.Helper()
	status, _, m := call(t, "POST", srv.URL()+"/v1.0/$batch", body, "Content-Type", "application/json")
	byID := map[string]map[string]any{}
	var order []string
	list, _ := m["responses"].([]any)
	for _, r := range list {
		r := r.(map[string]any)
		id, _ := r["id"].(string)
		byID[id] = r
		order = append(order, id)
	}
	return status, byID, order, m
}

func innerStatus(r map[string]any) int {
	f, _ := r["status"].(float64)
	return int(f)
}

func innerBody(r map[string]any) map[string]any {
	b, _ := r["body"].(map[string]any)
	return b
}

func TestBatchServesEachRequestThroughItsRoute(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	agent := srv.Directory().TransitiveUserMembers(graphtest.NestedGroupID)[0]
	body := `{"requests":[
		{"id":"u","method":"GET","url":"/users/` + agent + `?$select=id,accountEnabled"},
		{"id":"m","method":"GET","url":"users/` + agent + `/transitiveMemberOf?$select=id"},
		{"id":"c","method":"POST","url":"/users/` + agent + `/checkMemberGroups","headers":{"Content-Type":"application/json"},"body":{"groupIds":["` + graphtest.ScopeGroupID + `"]}},
		{"id":"x","method":"GET","url":"/users/0f0f0f0f-0000-4000-8000-000000000000"}]}`
	status, got, _, _ := batchResponses(t, srv, body)
	if status != 200 || len(got) != 4 {
		t.Fatalf("batch: %d with %d responses, want 200 with 4", status, len(got))
	}
	if u := innerBody(got["u"]); innerStatus(got["u"]) != 200 || u["id"] != agent || u["accountEnabled"] == nil {
		t.Errorf("user: %d %v", innerStatus(got["u"]), u)
	}
	if v, _ := innerBody(got["m"])["value"].([]any); innerStatus(got["m"]) != 200 || len(v) != len(srv.Directory().TransitiveGroupsOf(agent)) {
		t.Errorf("transitiveMemberOf: %d %v, want every group of the user", innerStatus(got["m"]), innerBody(got["m"]))
	}
	if v, _ := innerBody(got["c"])["value"].([]any); innerStatus(got["c"]) != 200 || len(v) != 1 {
		t.Errorf("checkMemberGroups: %d %v", innerStatus(got["c"]), innerBody(got["c"]))
	}
	if innerStatus(got["x"]) != 404 || errorCode(innerBody(got["x"])) != "Request_ResourceNotFound" {
		t.Errorf("missing user: %d %v, want 404 Request_ResourceNotFound", innerStatus(got["x"]), innerBody(got["x"]))
	}
	if h, _ := got["u"]["headers"].(map[string]any); h["Content-Type"] == nil {
		t.Errorf("inner response headers %v lack Content-Type", got["u"]["headers"])
	}
	for route, want := range map[string]int{"POST /v1.0/$batch": 1, "GET /v1.0/users/{id}": 2,
		"GET /v1.0/users/{id}/transitiveMemberOf": 1, "POST /v1.0/users/{id}/checkMemberGroups": 1} {
		if n := srv.Calls(route); n != want {
			t.Errorf("Calls(%q) = %d, want %d", route, n, want)
		}
	}
}

func TestBatchFaultsHitOneInnerRequest(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	srv.FailOn(graphtest.OpTransitiveMemberOf, http.StatusTooManyRequests, 1)
	body := `{"requests":[{"id":"1","method":"GET","url":"/users/` + adele + `"},{"id":"2","method":"GET","url":"/users/` + adele + `/transitiveMemberOf"}]}`
	status, got, _, _ := batchResponses(t, srv, body)
	if status != 200 || innerStatus(got["1"]) != 200 {
		t.Fatalf("batch %d, user %d; want both 200", status, innerStatus(got["1"]))
	}
	if innerStatus(got["2"]) != 429 || errorCode(innerBody(got["2"])) != "TooManyRequests" {
		t.Errorf("membership: %d %v, want 429 TooManyRequests", innerStatus(got["2"]), innerBody(got["2"]))
	}
	if h, _ := got["2"]["headers"].(map[string]any); h["Retry-After"] == nil {
		t.Errorf("inner 429 without Retry-After: headers %v", got["2"]["headers"])
	}
	srv.FailOn(graphtest.OpBatch, http.StatusServiceUnavailable, 1)
	if status, _, _, _ := batchResponses(t, srv, body); status != 503 {
		t.Errorf("envelope fault: %d, want 503", status)
	}
}

func TestBatchAnswersInShuffledOrder(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	var reqs []string
	want := make([]string, 20)
	for i := range 20 {
		want[i] = fmt.Sprint(i)
		reqs = append(reqs, `{"id":"`+want[i]+`","method":"GET","url":"/users/`+adele+`?$select=id"}`)
	}
	body := `{"requests":[` + strings.Join(reqs, ",") + `]}`
	reordered := false
	for range 3 {
		status, got, order, _ := batchResponses(t, srv, body)
		if status != 200 || len(got) != 20 {
			t.Fatalf("batch of 20: %d, %d responses", status, len(got))
		}
		reordered = reordered || !slices.Equal(order, want)
	}
	if !reordered {
		t.Errorf("three batches of 20 answered in request order every time; clients must not be able to rely on it")
	}
}

func TestBatchRejectsMalformedBatches(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	get := func(id string) string { return `{"id":"` + id + `","method":"GET","url":"/users/` + adele + `"}` }
	var many []string
	for i := range 21 {
		many = append(many, get(fmt.Sprint(i)))
	}
	for name, body := range map[string]string{
		"not JSON":          `{`,
		"no requests":       `{}`,
		"21 requests":       `{"requests":[` + strings.Join(many, ",") + `]}`,
		"duplicate ids":     `{"requests":[` + get("a") + `,` + get("A") + `]}`,
		"no id":             `{"requests":[{"method":"GET","url":"/users"}]}`,
		"no method":         `{"requests":[{"id":"1","url":"/users"}]}`,
		"no url":            `{"requests":[{"id":"1","method":"GET"}]}`,
		"absolute url":      `{"requests":[{"id":"1","method":"GET","url":"https://graph.microsoft.com/v1.0/users"}]}`,
		"body without type": `{"requests":[{"id":"1","method":"POST","url":"/users/` + adele + `/checkMemberGroups","body":{"groupIds":["x"]}}]}`,
		"unknown dependsOn": `{"requests":[{"id":"1","method":"GET","url":"/users","dependsOn":["9"]}]}`,
		"nested batch":      `{"requests":[{"id":"1","method":"POST","url":"/$batch","headers":{"Content-Type":"application/json"},"body":{"requests":[]}}]}`,
	} {
		if status, _, _, m := batchResponses(t, srv, body); status != 400 || errorCode(m) == "" {
			t.Errorf("%s: %d %v, want 400 with an error code", name, status, m)
		}
	}
}

func TestBatchDependsOnFailsDependents(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	body := `{"requests":[
		{"id":"1","method":"GET","url":"/users/0f0f0f0f-0000-4000-8000-000000000000"},
		{"id":"2","method":"GET","url":"/users/` + adele + `","dependsOn":["1"]},
		{"id":"3","method":"GET","url":"/users/` + adele + `"}]}`
	status, got, _, _ := batchResponses(t, srv, body)
	if status != 200 || innerStatus(got["1"]) != 404 || innerStatus(got["2"]) != 424 || innerStatus(got["3"]) != 200 {
		t.Errorf("statuses %d: 1=%d 2=%d 3=%d, want 404, 424 (failed dependency), 200",
			status, innerStatus(got["1"]), innerStatus(got["2"]), innerStatus(got["3"]))
	}
	if n := srv.Calls("GET /v1.0/users/{id}"); n != 2 {
		t.Errorf("%d user reads served, want 2 (the dependent one is not run)", n)
	}
}

func TestTransitiveMemberOf(t *testing.T) {
	t.Parallel()
	srv := sample(t, func(o *graphtest.Options) { o.MaxPageSize = 1 })
	agent := srv.Directory().TransitiveUserMembers(graphtest.NestedGroupID)[0]
	u := srv.URL() + "/v1.0/users/" + agent + "/transitiveMemberOf?$select=id&$top=999"
	var ids []string
	for page := 0; u != ""; page++ {
		status, _, m := call(t, "GET", u, "")
		if status != 200 || page > len(srv.Directory().TransitiveGroupsOf(agent)) {
			t.Fatalf("page %d: %d %v", page, status, m)
		}
		for _, v := range m["value"].([]any) {
			o := v.(map[string]any)
			if o["@odata.type"] != "#microsoft.graph.group" || o["displayName"] != nil {
				t.Errorf("item %v: want @odata.type #microsoft.graph.group and only the selected id", o)
			}
			ids = append(ids, o["id"].(string))
		}
		u, _ = m["@odata.nextLink"].(string)
	}
	slices.Sort(ids)
	want := srv.Directory().TransitiveGroupsOf(agent)
	if !slices.Equal(ids, want) || !slices.Contains(ids, graphtest.ScopeGroupID) || !slices.Contains(ids, graphtest.NestedGroupID) {
		t.Errorf("groups %v, want %v (direct and nested, the scope group among them)", ids, want)
	}
	if status, _, m := call(t, "GET", srv.URL()+"/v1.0/users/0f0f0f0f-0000-4000-8000-000000000000/transitiveMemberOf", ""); status != 404 || errorCode(m) != "Request_ResourceNotFound" {
		t.Errorf("missing user: %d %q", status, errorCode(m))
	}
	if status, _, _ := call(t, "GET", srv.URL()+"/v1.0/users/"+agent+"/transitiveMemberOf?$top=1000", ""); status != 400 {
		t.Errorf("$top=1000: %d, want 400", status)
	}
	if status, _, _ := call(t, "GET", srv.URL()+"/v1.0/users/"+agent+"/transitiveMemberOf?$filter=id eq 'x'", ""); status != 400 {
		t.Errorf("$filter without ConsistencyLevel: %d, want 400", status)
	}
}
