package worker

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"strings"
)

// changeNotification is a Graph change or lifecycle notification, as delivered in a
// {"value":[...]} collection or as a CloudEvent's data. Only what the worker reads is
// declared; users are not rich-notification resources, so there is no resource body.
// The relay re-serialises trusted items from this type, so every field the worker reads is
// here, and nothing else.
type changeNotification struct {
	SubscriptionID string        `json:"subscriptionId,omitempty"`
	ChangeType     string        `json:"changeType,omitempty"`
	Resource       string        `json:"resource,omitempty"`
	ResourceData   *resourceData `json:"resourceData,omitempty"` // nil when absent
	ClientState    *string       `json:"clientState"`            // nil when absent or null
	TenantID       string        `json:"tenantId,omitempty"`
	LifecycleEvent string        `json:"lifecycleEvent,omitempty"`
}

type resourceData struct {
	ODataType      string `json:"@odata.type,omitempty"`
	ID             string `json:"id,omitempty"`
	OrganizationID string `json:"organizationId,omitempty"`
	// MembersDelta is the undocumented group member delta; nil when absent.
	MembersDelta json.RawMessage `json:"members@delta,omitempty"`
}

// data returns the resource data, the zero value when the notification has none.
func (n changeNotification) data() resourceData {
	if n.ResourceData == nil {
		return resourceData{}
	}
	return *n.ResourceData
}

// memberDelta is one members@delta entry: {"id"} added, {"id","@removed":...} removed.
// Both are reconciled the same way (level-triggered), so @removed is not read.
type memberDelta struct {
	ID string `json:"id"`
}

// envelope is what a CloudEvent adds around a notification; zero for collection items.
type envelope struct {
	kind         resourceKind // from the event type
	deleted      bool         // the event type says the object was deleted
	lifecycle    string       // the lifecycle event the type implies, "" if none
	subject      string       // "Users/<oid>"
	sourceTenant string       // from source "/tenants/<tid>/..."
}

// notificationItem decodes item i of a {"value":[...]} collection.
func (d *decoder) notificationItem(i int, raw json.RawMessage) {
	var n changeNotification
	if err := json.Unmarshal(raw, &n); err != nil {
		d.reject(i, ReasonMalformed, "not a change notification object")
		return
	}
	d.notification(i, n, envelope{})
}

// notification applies the probe, trust, lifecycle and resource rules to one notification.
func (d *decoder) notification(i int, n changeNotification, env envelope) {
	if strings.EqualFold(n.SubscriptionID, "NA") &&
		strings.HasPrefix(strings.ToLower(n.ChangeType), "validation:") {
		d.addProbe() // Event Hubs reachability probe: never trusted, never acted on
		return
	}
	if why := d.untrusted(n, env.sourceTenant); why != "" {
		d.reject(i, ReasonUntrusted, "%s", why)
		return
	}
	if event := cmp.Or(n.LifecycleEvent, env.lifecycle); event != "" {
		d.addLifecycle(LifecycleEvent{SubscriptionID: n.SubscriptionID, Event: lifecycleName(event)})
		return
	}
	kind, id, ok := d.resolve(i, n, env)
	if !ok {
		return
	}
	deleted := env.deleted || strings.EqualFold(n.ChangeType, "deleted")
	switch {
	case kind == kindUser:
		d.addTarget(Target{Principal: id, Command: CommandReconcile, Source: userSource(n.ChangeType, deleted)})
	case deleted || n.data().MembersDelta == nil || string(n.data().MembersDelta) == "null":
		// Deleted groups and updates without a delta: the runtime lists the members. A
		// deleted group can no longer be listed; the scheduled resync covers its members.
		d.addGroup(id)
	default:
		d.membersDelta(i, n.data().MembersDelta)
	}
}

// resolve finds the kind and the lower-case object id a notification is about: the id from
// resourceData.id, else the resource path, else the CloudEvent subject; the kind from the
// resource path, else @odata.type, else the subject, else the event type.
func (d *decoder) resolve(i int, n changeNotification, env envelope) (resourceKind, string, bool) {
	pathKind, pathID := parseResource(n.Resource)
	subjKind, subjID := parseResource(env.subject)
	kind := pathKind
	for _, k := range []resourceKind{odataKind(n.data().ODataType), subjKind, env.kind} {
		if kind == kindUnknown {
			kind = k
		}
	}
	switch kind {
	case kindOther:
		d.reject(i, ReasonNotAUser, "resource %s is not a user or group", quoted(cmp.Or(n.Resource, env.subject)))
		return kind, "", false
	case kindUnknown:
		d.reject(i, ReasonNotAUser, "no user or group resource")
		return kind, "", false
	}
	id := cmp.Or(n.data().ID, pathID, subjID)
	if !isObjectID(id) {
		d.reject(i, ReasonBadPrincipal, "object id %s is not a GUID", quoted(id))
		return kind, "", false
	}
	return kind, strings.ToLower(id), true
}

// membersDelta queues each member named in a group's members@delta, added or removed.
func (d *decoder) membersDelta(i int, raw json.RawMessage) {
	var members []memberDelta
	if err := json.Unmarshal(raw, &members); err != nil {
		d.reject(i, ReasonMalformed, "members@delta is not an array of members")
		return
	}
	for _, m := range members {
		if !isObjectID(m.ID) {
			d.reject(i, ReasonBadPrincipal, "member id %s is not a GUID", quoted(m.ID))
			continue
		}
		d.addTarget(Target{Principal: strings.ToLower(m.ID), Command: CommandReconcile, Source: "groups/members@delta"})
	}
}

// untrusted returns why a notification must not be believed, or "". The text never holds
// the expected or the received clientState.
func (d *decoder) untrusted(n changeNotification, sourceTenant string) string {
	if d.trust.ClientState != "" && (n.ClientState == nil || !sameSecret(*n.ClientState, d.trust.ClientState)) {
		return "clientState does not match"
	}
	if d.trust.TenantID != "" {
		named := false
		for _, tid := range []string{n.TenantID, n.data().OrganizationID, sourceTenant} {
			if tid != "" && !strings.EqualFold(tid, d.trust.TenantID) {
				return "tenant is not ours"
			}
			named = named || tid != ""
		}
		if !named {
			return "no tenant id" // Graph names the tenant in every notification
		}
	}
	return ""
}

// sameSecret compares in constant time; hashing first hides the secret's length too.
func sameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// userSource labels a user notification for the audit log with a fixed set of values.
func userSource(changeType string, deleted bool) string {
	switch {
	case deleted:
		return "users/deleted"
	case strings.EqualFold(changeType, "created"):
		return "users/created"
	}
	return "users/updated"
}

// knownLifecycle are the lifecycle events Graph documents, in their canonical spelling.
var knownLifecycle = []string{"reauthorizationRequired", "subscriptionRemoved", "missed"}

// lifecycleName returns the canonical spelling of a known lifecycle event (matched in any
// letter case), or the value as sent for the keeper to log.
func lifecycleName(event string) string {
	for _, k := range knownLifecycle {
		if strings.EqualFold(event, k) {
			return k
		}
	}
	return event
}
