package main

import (
	"strconv"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// benchClientState is the secret the bench's notifications echo; it is never printed.
const benchClientState = "tpe-bench-client-state-7d1e"

const benchSubscriptionID = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"

var benchExpiration = time.Date(2026, 12, 20, 11, 0, 0, 0, time.UTC)

// notification is the bench's Graph change notification about a user or a group (members
// the group's members@delta, nil for none).
func notification(group bool, changeType, id string, members []worker.MemberDelta) worker.Notification {
	return worker.Notification{SubscriptionID: benchSubscriptionID, Expiration: benchExpiration,
		ChangeType: changeType, Group: group, ID: id, ClientState: benchClientState,
		TenantID: graphtest.SampleTenantID, Members: members}
}

// userBody is a notification about one user: as a Graph webhook collection, or (event
// true) as the Event Grid CloudEvent of the Graph partner topic. deleted picks the
// changeType "deleted" / Microsoft.Graph.UserDeleted.
func userBody(oid string, deleted, event bool, seq int) []byte {
	changeType, eventType := "updated", "Microsoft.Graph.UserUpdated"
	if deleted {
		changeType, eventType = "deleted", "Microsoft.Graph.UserDeleted"
	}
	n := notification(false, changeType, oid, nil)
	if !event {
		return worker.EncodeNotifications(n)
	}
	return worker.EncodeCloudEvent(worker.CloudEvent{Type: eventType, ID: "ev-" + strconv.Itoa(seq),
		Source: "/tenants/" + graphtest.SampleTenantID + "/applications/" + ourClientID}, n)
}

// groupBody says a group's membership changed, with members@delta when delta is non-nil.
func groupBody(groupID string, delta []worker.MemberDelta) []byte {
	return worker.EncodeNotifications(notification(true, "updated", groupID, delta))
}
