package subscriptions

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// eventGridKeys are the keys of a Graph partner-topic target, in the order Graph shows them.
var eventGridKeys = []string{"azuresubscriptionid", "resourcegroup", "partnertopic", "location"}

// EventGridURL turns the configured partner-topic target
// "azuresubscriptionid=...&resourcegroup=...&partnertopic=...&location=..." (keys in any
// order and letter case, an "EventGrid:?" prefix tolerated) into the notificationUrl Graph
// expects. All four keys are required; an unknown key is an error.
func EventGridURL(spec string) (string, error) {
	rest := strings.TrimSpace(spec)
	if p, ok := cutPrefixFold(rest, "EventGrid:?"); ok {
		rest = p
	}
	got := map[string]string{}
	for part := range strings.SplitSeq(rest, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !slices.Contains(eventGridKeys, k) {
			return "", fmt.Errorf("event grid target: unknown key %q (want %s)", k, strings.Join(eventGridKeys, ", "))
		}
		if _, dup := got[k]; dup {
			return "", fmt.Errorf("event grid target: key %s given twice", k)
		}
		got[k] = strings.TrimSpace(v)
	}
	parts := make([]string, 0, len(eventGridKeys))
	for _, k := range eventGridKeys {
		v := got[k]
		if v == "" {
			return "", fmt.Errorf("event grid target: missing %s (want %s=...)", k, k)
		}
		if strings.ContainsAny(v, " ?#%=&/\\\"'<>") {
			return "", fmt.Errorf("event grid target: %s has characters Azure names do not use", k)
		}
		parts = append(parts, k+"="+v)
	}
	if !worker.IsObjectID(got["azuresubscriptionid"]) {
		return "", errors.New("event grid target: azuresubscriptionid must be the Azure subscription id (a GUID)")
	}
	return "EventGrid:?" + strings.Join(parts, "&"), nil
}
