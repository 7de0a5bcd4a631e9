package main

import (
	"encoding/json"
	"strconv"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// benchClientState is the secret the bench's notifications echo; it is never printed.
const benchClientState = "tpe-bench-client-state-7d1e"

const benchSubscriptionID = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"

// changeNotification is the Graph change notification shape, as Graph sends it for users
// and groups (no properties: users are not rich-notification resources).
type changeNotification struct {
	SubscriptionID string       `json:"subscriptionId"`
	Expiration     string       `json:"subscriptionExpirationDateTime"`
	ChangeType     string       `json:"changeType"`
	Resource       string       `json:"resource"`
	ResourceData   resourceData `json:"resourceData"`
	ClientState    string       `json:"clientState"`
	TenantID       string       `json:"tenantId"`
}

type resourceData struct {
	ODataType      string        `json:"@odata.type"`
	ODataID        string        `json:"@odata.id"`
	ID             string        `json:"id"`
	OrganizationID string        `json:"organizationId"`
	MembersDelta   []memberDelta `json:"members@delta,omitempty"`
}

type memberDelta struct {
	ID      string `json:"id"`
	Removed string `json:"@removed,omitempty"`
}

type cloudEvent struct {
	SpecVersion string             `json:"specversion"`
	Type        string             `json:"type"`
	Source      string             `json:"source"`
	Subject     string             `json:"subject"`
	ID          string             `json:"id"`
	Data        changeNotification `json:"data"`
}

func notification(resource, changeType, odataType, id string, delta []memberDelta) changeNotification {
	return changeNotification{SubscriptionID: benchSubscriptionID, Expiration: "2026-12-20T11:00:00Z",
		ChangeType: changeType, Resource: resource, ClientState: benchClientState, TenantID: graphtest.SampleTenantID,
		ResourceData: resourceData{ODataType: odataType, ODataID: resource, ID: id,
			OrganizationID: graphtest.SampleTenantID, MembersDelta: delta}}
}

// userBody is a notification about one user: as a Graph webhook collection, or (event
// true) as the Event Grid CloudEvent of the Graph partner topic. deleted picks the
// changeType "deleted" / Microsoft.Graph.UserDeleted.
func userBody(oid string, deleted, event bool, seq int) []byte {
	changeType, eventType := "updated", "Microsoft.Graph.UserUpdated"
	if deleted {
		changeType, eventType = "deleted", "Microsoft.Graph.UserDeleted"
	}
	n := notification("Users/"+oid, changeType, "#Microsoft.Graph.User", oid, nil)
	if !event {
		return mustJSON(map[string][]changeNotification{"value": {n}})
	}
	return mustJSON(cloudEvent{SpecVersion: "1.0", Type: eventType, Subject: "Users/" + oid,
		Source: "/tenants/" + graphtest.SampleTenantID + "/applications/" + ourClientID,
		ID:     "ev-" + strconv.Itoa(seq), Data: n})
}

// groupBody says a group's membership changed, with members@delta when delta is non-nil.
func groupBody(groupID string, delta []memberDelta) []byte {
	n := notification("Groups/"+groupID, "updated", "#Microsoft.Graph.Group", groupID, delta)
	return mustJSON(map[string][]changeNotification{"value": {n}})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only the fixed types above are marshalled
	}
	return b
}
