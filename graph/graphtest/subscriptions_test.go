package graphtest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// Graph keys duplicates by resource and changeType, not by notification URL, and answers
// 409 "Subscription Id <id> already exists for the requested combination"
// (subscription-post-subscriptions, "Duplicate subscription behavior").
func TestDuplicateSubscriptionIsKeyedByResourceAndChangeType(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	srv := sample(t, func(o *graphtest.Options) { o.Clock = func() time.Time { return now } })
	post := func(resource, changeType, notify string) (int, map[string]any) {
		b, _ := json.Marshal(map[string]any{"resource": resource, "changeType": changeType, "notificationUrl": notify,
			"clientState": "cs", "expirationDateTime": now.Add(time.Hour).Format(time.RFC3339Nano)})
		status, _, m := call(t, "POST", srv.URL()+"/v1.0/subscriptions", string(b), "Content-Type", "application/json")
		return status, m
	}
	status, first := post("users", "updated,deleted", "https://hooks.contoso.example/a")
	if status != 201 {
		t.Fatalf("first: %d %v", status, first)
	}
	status, m := post("users", "updated,deleted", "EventGrid:?azuresubscriptionid=s&resourcegroup=rg&partnertopic=pt&location=westeurope")
	e, _ := m["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if status != 409 || msg != "Subscription Id "+first["id"].(string)+" already exists for the requested combination" {
		t.Errorf("same resource and changeType, new URL: %d %q", status, msg)
	}
	if status, m := post("users", "updated", "https://hooks.contoso.example/a"); status != 201 {
		t.Errorf("same resource and URL, another changeType: %d %v, want 201", status, m)
	}
	// The listing hides clientState (subscription-list: "not returned for security
	// purposes"); a read by id shows it (subscription-get's sample).
	_, _, list := call(t, "GET", srv.URL()+"/v1.0/subscriptions", "")
	for _, v := range list["value"].([]any) {
		if cs, ok := v.(map[string]any)["clientState"]; !ok || cs != nil {
			t.Errorf("listed clientState %v (present %v), want null", cs, ok)
		}
	}
	_, _, one := call(t, "GET", srv.URL()+"/v1.0/subscriptions/"+first["id"].(string), "")
	if one["clientState"] != "cs" {
		t.Errorf("GET by id clientState %v, want cs", one["clientState"])
	}
}
