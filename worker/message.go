package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// MaxBodyBytes is the largest message body Decode accepts. Graph batches notifications, but
// a user or group notification is well under 1 KiB, so 256 KiB is generous; anything larger
// is rejected before parsing.
const MaxBodyBytes = 256 << 10

// Trust is what a change or lifecycle notification must carry to be believed. An empty field
// is not checked.
type Trust struct {
	// TenantID is our directory's tenant id: a notification naming another tenant (tenantId,
	// resourceData.organizationId, or a CloudEvent source /tenants/<tid>/...) is rejected.
	TenantID string
	// ClientState is the secret given to Graph when subscribing: every notification must echo
	// it exactly (compared in constant time; a missing clientState is a mismatch).
	ClientState string
	// QueueOverrides lets grant and revoke commands through. Off (the default), anyone
	// with Send on the queue may only make us look at a principal: a grant or revoke
	// command is rejected as untrusted and dead-lettered, and only reconcile commands
	// and trusted notifications are acted on. The operator's overrides belong at the CLI.
	QueueOverrides bool
}

// Decode turns one queue message into what it asks for. It recognises, by shape:
//
//   - a Graph webhook or Event Hubs collection {"value":[changeNotification, ...]};
//   - an Event Grid CloudEvent from the Graph partner topic, as one object or an array;
//   - lifecycle notifications in either envelope;
//   - a command {"command":"reconcile|grant|revoke","principal":"<oid or UPN>",
//     "principalType":"user|teamsResourceAccount"};
//   - the Event Hubs reachability probe and Event Grid subscription validation (Probe).
//
// props are the message's application properties (Event Grid sets "aeg-event-type").
// Notifications are checked against trust (clientState and tenant). Commands carry no
// clientState; a reconcile command only makes us re-read a principal, so it is accepted
// from any sender the queue lets in, while grant and revoke are accepted only with
// trust.QueueOverrides.
//
// One bad item in a collection never poisons the others: it is reported in
// Decoded.Rejected. Whole-message failures are a *PermanentError with Reason too_large,
// malformed or unknown_shape. Decode is pure: no I/O, clock or logging, and it never echoes
// a clientState.
func Decode(body []byte, props map[string]any, trust Trust) (Decoded, error) {
	if len(body) > MaxBodyBytes {
		return Decoded{}, &PermanentError{Reason: ReasonTooLarge,
			Description: fmt.Sprintf("body is %d bytes, limit %d", len(body), MaxBodyBytes)}
	}
	if isValidationProps(props) {
		return Decoded{Probe: true}, nil
	}
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(trimmed) {
		return Decoded{}, &PermanentError{Reason: ReasonMalformed, Description: "body is not valid JSON"}
	}
	d := newDecoder(trust)
	switch trimmed[0] {
	case '[':
		if err := d.cloudEventArray(trimmed); err != nil {
			return Decoded{}, err
		}
	case '{':
		if err := d.object(trimmed); err != nil {
			return Decoded{}, err
		}
	default:
		return Decoded{}, unknownShape("body is neither an object nor an array")
	}
	return d.result(), nil
}

// isValidationProps reports whether Event Grid marked the message as its subscription
// validation handshake.
func isValidationProps(props map[string]any) bool {
	v, ok := props["aeg-event-type"]
	if !ok {
		return false
	}
	s, _ := v.(string)
	return strings.EqualFold(s, "SubscriptionValidation")
}

// object decodes a top-level JSON object by the keys it carries.
func (d *decoder) object(body []byte) error {
	keys, err := objectKeys(body)
	if err != nil {
		return &PermanentError{Reason: ReasonMalformed, Description: "body is not a JSON object"}
	}
	switch {
	case keys["value"] != nil:
		return d.collection(keys["value"])
	case keys["specversion"] != nil || keys["eventtype"] != nil ||
		(keys["type"] != nil && (keys["data"] != nil || keys["subject"] != nil)):
		d.cloudEvent(0, body)
		return nil
	case keys["command"] != nil:
		d.command(body)
		return nil
	}
	return unknownShape("object has none of value, specversion, type, command")
}

// collection decodes {"value":[...]}: change and lifecycle notifications, one at a time.
func (d *decoder) collection(raw json.RawMessage) error {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return &PermanentError{Reason: ReasonMalformed, Description: "value is not an array"}
	}
	for i, item := range items {
		d.notificationItem(i, item)
	}
	return nil
}

// cloudEventArray decodes an array of CloudEvents (Event Grid may batch).
func (d *decoder) cloudEventArray(body []byte) error {
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return &PermanentError{Reason: ReasonMalformed, Description: "body is not a JSON array"}
	}
	for i, item := range items {
		d.cloudEvent(i, item)
	}
	return nil
}

// objectKeys returns the object's members with lower-cased names. When names differ only
// in case, the all-lower-case one wins, else the smallest, so decoding is deterministic.
func objectKeys(raw []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	keys := make(map[string]json.RawMessage, len(m))
	chosen := make(map[string]string, len(m))
	for k, v := range m {
		lk := strings.ToLower(k)
		if prev, dup := chosen[lk]; dup && (prev == lk || k != lk && prev < k) {
			continue
		}
		keys[lk], chosen[lk] = v, k
	}
	return keys, nil
}

func unknownShape(desc string) *PermanentError {
	return &PermanentError{Reason: ReasonUnknownShape, Description: desc}
}

// quoted returns s quoted for a description, cut to a short length so a hostile message
// cannot fill a dead-letter description.
func quoted(s string) string {
	const max = 48
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}
