package worker_test

import (
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The encoders write what the decoder reads: a user notification, a group member delta and
// a CloudEvent each decode to the targets they describe, and a forged clientState is refused.
func TestEncodeNotificationRoundTrip(t *testing.T) {
	t.Parallel()
	const (
		tenant = "8f2c1c55-7b7e-4d0a-9a39-3c7f1b2d4e61"
		secret = "encode-test-client-state"
		oid    = "00000000-0000-4000-8000-000000000001"
		member = "00000000-0000-4000-8000-000000000002"
		group  = "00000000-0000-4000-8000-000000000003"
	)
	trust := worker.Trust{TenantID: tenant, ClientState: secret}
	user := worker.Notification{SubscriptionID: "s", ChangeType: "updated", ID: oid, ClientState: secret, TenantID: tenant,
		Expiration: time.Date(2026, 12, 20, 11, 0, 0, 0, time.UTC)}
	grp := worker.Notification{SubscriptionID: "s", ChangeType: "updated", Group: true, ID: group, ClientState: secret,
		TenantID: tenant, Members: []worker.MemberDelta{{ID: member, Removed: true}}}
	deleted := user
	deleted.ChangeType = "deleted"
	forged := user
	forged.ClientState = "not-the-secret"
	cases := []struct {
		name string
		body []byte
		want string // the one target's principal, "" for a rejection
	}{
		{"user webhook", worker.EncodeNotifications(user), oid},
		{"group delta", worker.EncodeNotifications(grp), member},
		{"cloud event", worker.EncodeCloudEvent(worker.CloudEvent{Type: "Microsoft.Graph.UserDeleted", ID: "e1",
			Source: "/tenants/" + tenant + "/applications/x", Time: time.Now()}, deleted), oid},
		{"forged clientState", worker.EncodeNotifications(forged), ""},
	}
	for _, c := range cases {
		d, err := worker.Decode(c.body, nil, trust)
		if err != nil {
			t.Errorf("%s: %s: %v", c.name, c.body, err)
			continue
		}
		if c.want == "" {
			if len(d.Principals) != 0 || len(d.Rejected) == 0 {
				t.Errorf("%s: %+v; want a rejection and no target", c.name, d)
			}
			continue
		}
		if len(d.Principals) != 1 || d.Principals[0].Principal != c.want || len(d.Rejected) != 0 {
			t.Errorf("%s: %s decodes to %+v; want one target %s", c.name, c.body, d, c.want)
		}
	}
}
