package main

import (
	"fmt"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The demo's story, told on the sample directory (deploy/local/directory.json). Each chapter
// changes the directory the way an administrator would, then delivers the notifications
// Graph would send — sometimes twice, late or forged — through the real worker pipeline.
// want says what the worker must do with each principal; the demo fails when it does not.

const (
	teams1Plan     = "57ff2da0-773e-42df-b2af-ffb7a2317929" // TEAMS1
	e5Sku          = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"
	noraID         = "4b1f0c9e-7d2a-4e3b-9f6c-8a5d2e1b0c7f"
	noraUPN        = "nora.newman@contoso.example"
	adeleID        = "e2a214e8-bbe9-4675-9d52-490575ffc53d"
	alexID         = "03aa3897-fcf4-46b6-986c-39e8c7bb69f6"
	diegoID        = "5c22c469-63e9-48fd-a4d4-748ca3c77ebf"
	gradyID        = "b2609a0b-dd2b-4550-8c65-6018eee38dc1"
	isaiahID       = "5bd0f521-be84-462b-bb9b-e05d0e8e2329"
	johannaID      = "7ea3ef27-e2e9-4528-a4e0-689e1888df20"
	ivrID          = "9e6a3d21-5c4b-4f8e-a1d7-3b2c0f9e8d64"
	ivrUPN         = "ivr-main@contoso.example"
	raSku          = "440eaaa8-b3e0-484b-a8be-62870b9ba70a" // PHONESYSTEM_VIRTUALUSER
	raPlan         = "f47330e9-c134-43b3-9993-e7f004506889" // MCOEV_VIRTUALUSER
	demoSubscripID = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
)

// chapter is one step of the story.
type chapter struct {
	title  string
	change func(d *graphtest.Directory, e *emulators) error // the administrator's change
	bodies [][]byte                                         // what reaches the queue, in delivery order
	want   map[string]worker.Action                         // object id → expected action (dead-lettered: "dead_letter")
}

const wantDeadLetter worker.Action = "dead_letter"

func storyChapters(tenant string) []chapter {
	n := notifier{tenant: tenant, clientState: localClientState}
	return []chapter{
		{
			title: "new Teams user joins (onboarding)",
			change: func(d *graphtest.Directory, _ *emulators) error {
				if err := d.AddUser(graphtest.UserRecord{ID: noraID, UserPrincipalName: noraUPN, DisplayName: "Nora Newman",
					AccountEnabled: true, UserType: "Member", AssignedLicenses: []graphtest.License{{SkuID: e5Sku}},
					AssignedPlans: []graphtest.Plan{{ServicePlanID: teams1Plan, Service: "TeamspaceAPI", CapabilityStatus: "Enabled"}}}); err != nil {
					return err
				}
				return d.AddMember(localScopeGroup, noraID)
			},
			bodies: [][]byte{n.webhook(noraID, "updated")},
			want:   map[string]worker.Action{noraID: worker.ActionGrant},
		},
		{
			title:  "duplicates: the same notification three times",
			bodies: [][]byte{n.cloudEvent("Microsoft.Graph.UserUpdated", noraID), n.webhook(noraID, "updated"), n.webhook(noraID, "updated")},
			want:   map[string]worker.Action{noraID: worker.ActionNoop},
		},
		{
			title: "new resource account (a disabled user object by design) gets server consent",
			change: func(d *graphtest.Directory, _ *emulators) error {
				if err := d.AddUser(graphtest.UserRecord{ID: ivrID, UserPrincipalName: ivrUPN, DisplayName: "IVR Main Line",
					AccountEnabled: false, UserType: "Member", Department: worker.ResourceAccountDepartment,
					AssignedLicenses: []graphtest.License{{SkuID: raSku}},
					AssignedPlans:    []graphtest.Plan{{ServicePlanID: raPlan, Service: "MCOEV", CapabilityStatus: "Enabled"}}}); err != nil {
					return err
				}
				return d.AddMember(localScopeGroup, ivrID)
			},
			bodies: [][]byte{n.cloudEvent("Microsoft.Graph.UserUpdated", ivrID)},
			want:   map[string]worker.Action{ivrID: worker.ActionGrant},
		},
		{
			title:  "licence removed",
			change: func(d *graphtest.Directory, _ *emulators) error { return d.SetPlans(alexID) },
			bodies: [][]byte{n.webhook(alexID, "updated")},
			want:   map[string]worker.Action{alexID: worker.ActionRevoke},
		},
		{
			title:  "user deleted; an older 'updated' arrives after the 'deleted' (out of order)",
			change: func(d *graphtest.Directory, _ *emulators) error { return d.DeleteUser(diegoID) },
			bodies: [][]byte{n.cloudEvent("Microsoft.Graph.UserDeleted", diegoID), n.webhook(diegoID, "updated")},
			want:   map[string]worker.Action{diegoID: worker.ActionRevoke},
		},
		{
			title:  "user leaves the scope group",
			change: func(d *graphtest.Directory, _ *emulators) error { return d.RemoveMember(localScopeGroup, gradyID) },
			bodies: [][]byte{n.groupDelta(localScopeGroup, gradyID, true)},
			want:   map[string]worker.Action{gradyID: worker.ActionRevoke},
		},
		{
			title: "account disabled, notified twice (webhook and Event Grid)",
			change: func(d *graphtest.Directory, _ *emulators) error {
				return d.SetAccountEnabled(isaiahID, false)
			},
			bodies: [][]byte{n.webhook(isaiahID, "updated"), n.cloudEvent("Microsoft.Graph.UserUpdated", isaiahID)},
			want:   map[string]worker.Action{isaiahID: worker.ActionRevoke},
		},
		{
			title: "licence removed while ACS throttles (a 429 burst with Retry-After)",
			change: func(d *graphtest.Directory, e *emulators) error {
				if err := d.SetPlans(johannaID); err != nil { // make a change to write
					return err
				}
				for range 2 {
					e.acs.FailNext(429, time.Second)
				}
				return nil
			},
			bodies: [][]byte{n.webhook(johannaID, "updated")},
			want:   map[string]worker.Action{johannaID: worker.ActionRevoke},
		},
		{
			title:  "forged clientState",
			bodies: [][]byte{notifier{tenant: tenant, clientState: "not-the-secret"}.webhook(adeleID, "updated")},
			want:   map[string]worker.Action{adeleID: wantDeadLetter},
		},
	}
}

// notifier builds notification bodies in the documented shapes (worker's encoders).
type notifier struct{ tenant, clientState string }

func (n notifier) change(id, changeType string) worker.Notification {
	return worker.Notification{SubscriptionID: demoSubscripID, Expiration: time.Now().Add(72 * time.Hour),
		ChangeType: changeType, ID: id, ClientState: n.clientState, TenantID: n.tenant}
}

// webhook is a Graph webhook (or Event Hubs) collection with one change notification.
func (n notifier) webhook(id, changeType string) []byte {
	return worker.EncodeNotifications(n.change(id, changeType))
}

// cloudEvent is what the Graph partner topic delivers through Event Grid.
func (n notifier) cloudEvent(eventType, id string) []byte {
	changeType := "updated"
	if eventType == "Microsoft.Graph.UserDeleted" {
		changeType = "deleted"
	}
	return worker.EncodeCloudEvent(worker.CloudEvent{Type: eventType, ID: fmt.Sprintf("%s-%d", id, time.Now().UnixNano()),
		Source: "/tenants/" + n.tenant + "/applications/" + localClientIDs[:36], Time: time.Now()},
		n.change(id, changeType))
}

// groupDelta is a group notification naming one member added or removed.
func (n notifier) groupDelta(groupID, memberID string, removed bool) []byte {
	c := n.change(groupID, "updated")
	c.Group, c.Members = true, []worker.MemberDelta{{ID: memberID, Removed: removed}}
	return worker.EncodeNotifications(c)
}
