package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Forwardable returns what the relay queues for a post: a changeNotificationCollection
// built anew from the post's items that pass the clientState and tenant check, holding
// only the fields the worker reads, so that nothing the sender added (other top-level
// members, a command, duplicate or unknown keys) reaches the queue. rejected counts the
// items dropped. An error means nothing is to be queued: the body is not a collection,
// or no item in it is trusted.
func Forwardable(body []byte, trust Trust) (out []byte, rejected int, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, 0, errors.New("body is not a JSON object")
	}
	keys, err := objectKeys(trimmed)
	if err != nil || keys["value"] == nil {
		return nil, 0, errors.New("body is not a change notification collection (no value)")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(keys["value"], &items); err != nil || len(items) == 0 {
		return nil, 0, errors.New("value is not a non-empty array")
	}
	d := newDecoder(trust)
	var kept []changeNotification
	for _, item := range items {
		var n changeNotification
		if bytes.TrimSpace(item)[0] != '{' || json.Unmarshal(item, &n) != nil || d.untrusted(n, "") != "" {
			rejected++
			continue
		}
		kept = append(kept, n)
	}
	if len(kept) == 0 {
		return nil, rejected, fmt.Errorf("none of %d items carries our clientState and tenant", len(items))
	}
	out, err = json.Marshal(struct {
		Value []changeNotification `json:"value"`
	}{kept})
	return out, rejected, err
}
