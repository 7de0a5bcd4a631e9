package worker

import (
	"cmp"
	"encoding/json"
	"strings"
)

// cloudEvent is an Event Grid event from the Graph partner topic (CloudEvents 1.0). The
// Event Grid schema's eventType is accepted in place of type.
type cloudEvent struct {
	Type      string          `json:"type"`
	EventType string          `json:"eventType"`
	Source    string          `json:"source"`
	Subject   string          `json:"subject"`
	Data      json.RawMessage `json:"data"`
}

const (
	graphEventPrefix      = "microsoft.graph."
	validationEventType   = "microsoft.eventgrid.subscriptionvalidationevent"
	subscriptionEventName = "subscription"
)

// cloudEvent decodes item i, a CloudEvent: Microsoft.Graph.User*, Group* and
// Subscription* types carry a change or lifecycle notification as data; Event Grid's
// subscription validation event is a probe.
func (d *decoder) cloudEvent(i int, raw json.RawMessage) {
	var ce cloudEvent
	if err := json.Unmarshal(raw, &ce); err != nil {
		d.reject(i, ReasonMalformed, "not a CloudEvent object")
		return
	}
	typ := cmp.Or(ce.Type, ce.EventType)
	if strings.EqualFold(typ, validationEventType) {
		d.addProbe()
		return
	}
	if typ == "" {
		d.reject(i, ReasonUnknownShape, "item has no event type")
		return
	}
	var n changeNotification
	if len(ce.Data) > 0 && string(ce.Data) != "null" {
		if err := json.Unmarshal(ce.Data, &n); err != nil {
			d.reject(i, ReasonMalformed, "event data is not a change notification")
			return
		}
	}
	env, ok := graphEnvelope(typ)
	if !ok && n.LifecycleEvent == "" {
		d.reject(i, ReasonUnknownShape, "event type %s", quoted(typ))
		return
	}
	env.subject = ce.Subject
	env.sourceTenant = sourceTenant(ce.Source)
	d.notification(i, n, env)
}

// graphEnvelope reads what a Microsoft.Graph.* event type says: the kind of object, whether
// it was deleted, or the lifecycle event it stands for. Types are compared in any case.
func graphEnvelope(typ string) (envelope, bool) {
	name, ok := cutPrefixFold(typ, graphEventPrefix)
	if !ok {
		return envelope{}, false
	}
	if _, ok := cutPrefixFold(name, "user"); ok {
		return envelope{kind: kindUser, deleted: strings.EqualFold(name, "userDeleted")}, true
	}
	if _, ok := cutPrefixFold(name, "group"); ok {
		return envelope{kind: kindGroup, deleted: strings.EqualFold(name, "groupDeleted")}, true
	}
	if rest, ok := cutPrefixFold(name, subscriptionEventName); ok && rest != "" {
		// SubscriptionReauthorizationRequired → reauthorizationRequired; SubscriptionRemoved
		// → subscriptionRemoved; anything else passes through as sent.
		event := lifecycleName(rest)
		if event == rest {
			event = lifecycleName(name)
		}
		return envelope{lifecycle: event}, true
	}
	return envelope{}, false
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII letter case. prefix must be ASCII, so a
// match is always on a rune boundary.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// sourceTenant returns <tid> from a source "/tenants/<tid>/applications/<appid>", or "".
func sourceTenant(source string) string {
	parts := strings.Split(strings.Trim(source, "/"), "/")
	if len(parts) >= 2 && strings.EqualFold(parts[0], "tenants") {
		return parts[1]
	}
	return ""
}
