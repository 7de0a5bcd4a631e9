package graphtest_test

import (
	"net/http"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

const adele = "adele.vance@contoso.example"

func TestFailOnFailsOnlyThatOperation(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	srv.FailOn(graphtest.OpCheckMemberGroups, http.StatusForbidden, 0)
	check := srv.URL() + "/v1.0/users/" + adele + "/checkMemberGroups"
	body := `{"groupIds":["` + graphtest.ScopeGroupID + `"]}`
	for i := range 3 {
		if status, _, m := call(t, "POST", check, body); status != 403 || errorCode(m) != "Authorization_RequestDenied" {
			t.Fatalf("checkMemberGroups %d: %d %q, want 403 Authorization_RequestDenied until cleared", i, status, errorCode(m))
		}
		if status, _, _ := call(t, "GET", srv.URL()+"/v1.0/users/"+adele+"?$select=id", ""); status != 200 {
			t.Fatalf("getUser %d: %d, want 200 (only checkMemberGroups fails)", i, status)
		}
	}
	srv.ClearFaults()
	if status, _, _ := call(t, "POST", check, body); status != 200 {
		t.Errorf("after ClearFaults: %d, want 200", status)
	}
}

func TestFailOnCountsDown(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	srv.FailOn(graphtest.OpGetUser, http.StatusServiceUnavailable, 2)
	u := srv.URL() + "/v1.0/users/" + adele
	var got []int
	for range 3 {
		status, h, _ := call(t, "GET", u, "")
		if status == 503 && h.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		got = append(got, status)
	}
	if got[0] != 503 || got[1] != 503 || got[2] != 200 {
		t.Errorf("statuses %v, want [503 503 200]", got)
	}
}

func TestFailOnSubscriptionsAndGetGroup(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	srv.FailOn(graphtest.OpSubscriptions, http.StatusTooManyRequests, 1)
	if status, _, m := call(t, "GET", srv.URL()+"/v1.0/subscriptions", ""); status != 429 || errorCode(m) != "TooManyRequests" {
		t.Errorf("subscriptions: %d %q, want 429 TooManyRequests", status, errorCode(m))
	}
	status, _, m := call(t, "GET", srv.URL()+"/v1.0/groups/"+graphtest.ScopeGroupID, "")
	if status != 200 || m["id"] != graphtest.ScopeGroupID || m["displayName"] != "Teams Phone Extensibility" {
		t.Errorf("getGroup: %d %v", status, m)
	}
	srv.FailOn(graphtest.OpGetGroup, http.StatusNotFound, 1)
	if status, _, m := call(t, "GET", srv.URL()+"/v1.0/groups/"+graphtest.ScopeGroupID, ""); status != 404 || errorCode(m) != "Request_ResourceNotFound" {
		t.Errorf("getGroup with fault: %d %q", status, errorCode(m))
	}
	if status, _, m := call(t, "GET", srv.URL()+"/v1.0/groups/00000000-0000-4000-8000-000000000000", ""); status != 404 || errorCode(m) != "Request_ResourceNotFound" {
		t.Errorf("missing group: %d %q, want 404 Request_ResourceNotFound", status, errorCode(m))
	}
}

func TestFailOnUnknownOperationPanics(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	for name, f := range map[string]func(){
		"FailOn":        func() { srv.FailOn("getUsers", 500, 1) },
		"EmptyListing":  func() { srv.EmptyListing(graphtest.OpGetUser) },
		"StripProperty": func() { srv.StripProperty("accountenabled") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestStripProperty(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	srv.StripProperty("accountEnabled", "assignedPlans")
	sel := "?$select=id,userPrincipalName,accountEnabled,assignedPlans,userType"
	_, _, m := call(t, "GET", srv.URL()+"/v1.0/users/"+adele+sel, "")
	for _, p := range []string{"accountEnabled", "assignedPlans"} {
		if _, ok := m[p]; ok {
			t.Errorf("getUser still has %s: %v", p, m)
		}
	}
	if m["userType"] != "Member" || m["id"] == nil {
		t.Errorf("getUser lost unstripped properties: %v", m)
	}
	lists := []string{
		"/v1.0/users" + sel,
		"/v1.0/groups/" + graphtest.ScopeGroupID + "/transitiveMembers/microsoft.graph.user" + sel + "&$count=true",
	}
	for _, l := range lists {
		_, _, m := call(t, "GET", srv.URL()+l, "", "ConsistencyLevel", "eventual")
		value, _ := m["value"].([]any)
		if len(value) == 0 {
			t.Fatalf("%s: empty listing %v", l, m)
		}
		for _, v := range value {
			if _, ok := v.(map[string]any)["accountEnabled"]; ok {
				t.Errorf("%s: item still has accountEnabled", l)
			}
		}
	}
	srv.ClearFaults()
	if _, _, m := call(t, "GET", srv.URL()+"/v1.0/users/"+adele+sel, ""); m["accountEnabled"] != true {
		t.Errorf("after ClearFaults: %v", m)
	}
}

func TestEmptyListing(t *testing.T) {
	t.Parallel()
	srv := sample(t)
	members := srv.URL() + "/v1.0/groups/" + graphtest.ScopeGroupID + "/transitiveMembers/microsoft.graph.user?$count=true&$top=2"
	srv.EmptyListing(graphtest.OpTransitiveMembers)
	status, _, m := call(t, "GET", members, "", "ConsistencyLevel", "eventual")
	value, ok := m["value"].([]any)
	if status != 200 || !ok || len(value) != 0 || m["@odata.nextLink"] != nil || m["@odata.count"] != float64(0) {
		t.Errorf("emptied transitiveMembers: %d %v, want 200 with value [], count 0, no nextLink", status, m)
	}
	if _, _, m := call(t, "GET", srv.URL()+"/v1.0/users?$top=2", ""); len(m["value"].([]any)) != 2 {
		t.Errorf("listUsers emptied too: %v", m)
	}
	srv.ClearFaults()
	if _, _, m := call(t, "GET", members, "", "ConsistencyLevel", "eventual"); len(m["value"].([]any)) != 2 {
		t.Errorf("after ClearFaults: %v", m)
	}
}
