package worker

import (
	"encoding/json"
	"time"
)

// Notification is one Graph change notification about a user or a group, as the encoders
// below write it in the documented shape (what Graph delivers to a webhook, an Event Hub or
// inside the partner topic's CloudEvent). The demo, the bench and the tests build their
// bodies with it, so there is one writer of the format the decoder reads.
type Notification struct {
	SubscriptionID string
	Expiration     time.Time // subscriptionExpirationDateTime; omitted when zero
	ChangeType     string    // "created", "updated" or "deleted"
	Group          bool      // about Groups/<ID> rather than Users/<ID>
	ID             string    // the object id
	ClientState    string
	TenantID       string // tenantId and resourceData.organizationId
	// Members is the group's members@delta; nil writes none.
	Members []MemberDelta
}

// MemberDelta is one members@delta entry: a member added, or removed when Removed.
type MemberDelta struct {
	ID      string
	Removed bool
}

// CloudEvent is what the Graph partner topic wraps around a notification on Event Grid.
type CloudEvent struct {
	Type   string    // e.g. Microsoft.Graph.UserUpdated
	ID     string    // the event id
	Source string    // "/tenants/<tid>/applications/<app id>"
	Time   time.Time // omitted when zero
}

// EncodeNotifications returns a {"value":[...]} collection of the notifications, as Graph
// posts it to a webhook.
func EncodeNotifications(ns ...Notification) []byte {
	items := make([]notificationOut, len(ns))
	for i, n := range ns {
		items[i] = n.out()
	}
	return mustMarshal(struct {
		Value []notificationOut `json:"value"`
	}{items})
}

// EncodeCloudEvent returns n inside the CloudEvent e, as Event Grid delivers it; the subject
// is the notification's resource.
func EncodeCloudEvent(e CloudEvent, n Notification) []byte {
	out := cloudEventOut{SpecVersion: "1.0", Type: e.Type, ID: e.ID, Source: e.Source, Subject: n.resource(),
		DataContentType: "application/json", Data: n.out()}
	if !e.Time.IsZero() {
		out.Time = e.Time.UTC().Format(time.RFC3339)
	}
	return mustMarshal(out)
}

func (n Notification) resource() string {
	if n.Group {
		return "Groups/" + n.ID
	}
	return "Users/" + n.ID
}

func (n Notification) out() notificationOut {
	odataType := "#Microsoft.Graph.User"
	if n.Group {
		odataType = "#Microsoft.Graph.Group"
	}
	o := notificationOut{SubscriptionID: n.SubscriptionID, ChangeType: n.ChangeType, Resource: n.resource(),
		ClientState: n.ClientState, TenantID: n.TenantID,
		ResourceData: resourceDataOut{ODataType: odataType, ODataID: n.resource(), ID: n.ID, OrganizationID: n.TenantID}}
	if !n.Expiration.IsZero() {
		o.Expiration = n.Expiration.UTC().Format(time.RFC3339)
	}
	if n.Members != nil {
		o.ResourceData.MembersDelta = make([]memberDeltaOut, len(n.Members))
		for i, m := range n.Members {
			o.ResourceData.MembersDelta[i].ID = m.ID
			if m.Removed {
				o.ResourceData.MembersDelta[i].Removed = "deleted"
			}
		}
	}
	return o
}

// The written shapes; the decoder's types declare only what it reads, these what Graph sends.
type notificationOut struct {
	SubscriptionID string          `json:"subscriptionId"`
	Expiration     string          `json:"subscriptionExpirationDateTime,omitempty"`
	ChangeType     string          `json:"changeType"`
	Resource       string          `json:"resource"`
	ResourceData   resourceDataOut `json:"resourceData"`
	ClientState    string          `json:"clientState"`
	TenantID       string          `json:"tenantId"`
}

type resourceDataOut struct {
	ODataType      string           `json:"@odata.type"`
	ODataID        string           `json:"@odata.id"`
	ID             string           `json:"id"`
	OrganizationID string           `json:"organizationId"`
	MembersDelta   []memberDeltaOut `json:"members@delta,omitempty"`
}

type memberDeltaOut struct {
	ID      string `json:"id"`
	Removed string `json:"@removed,omitempty"`
}

type cloudEventOut struct {
	SpecVersion     string          `json:"specversion"`
	Type            string          `json:"type"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype"`
	Data            notificationOut `json:"data"`
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only the fixed string types above are marshalled
		panic("worker: encode: " + err.Error())
	}
	return b
}
