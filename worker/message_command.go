package worker

import (
	"encoding/json"
	"strings"
)

// commandMessage is an operator's or another system's request to reconcile, grant or revoke
// one principal. Commands carry no clientState, so the queue's own authorisation is all
// that stands behind them: a reconcile (look at the principal, let the directory decide)
// is always accepted; grant and revoke, which override the directory, only with
// Trust.QueueOverrides.
type commandMessage struct {
	Command       string `json:"command"`
	Principal     string `json:"principal"`
	PrincipalType string `json:"principalType,omitempty"`
}

// EncodeCommand is the one encoder of the command message format that command decodes: a
// command for principal, with the principal type hint when one is known (backfill and
// resync know it; an empty typ sends none).
func EncodeCommand(cmd Command, principal string, typ PrincipalType) []byte {
	body, err := json.Marshal(commandMessage{Command: string(cmd), Principal: principal, PrincipalType: string(typ)})
	if err != nil { // three strings always marshal
		panic("worker: encode command: " + err.Error())
	}
	return body
}

// command decodes a command message into one Target (Source "command").
func (d *decoder) command(raw json.RawMessage) {
	var c commandMessage
	if err := json.Unmarshal(raw, &c); err != nil {
		d.reject(0, ReasonMalformed, "command fields are not strings")
		return
	}
	cmd, ok := parseCommand(c.Command)
	if !ok {
		d.reject(0, ReasonMalformed, "unknown command %s", quoted(c.Command))
		return
	}
	if cmd != CommandReconcile && !d.trust.QueueOverrides {
		d.reject(0, ReasonUntrusted, "%s command from the queue refused: only reconcile is accepted unless queue overrides are enabled", cmd)
		return
	}
	typ, ok := parsePrincipalType(c.PrincipalType)
	if !ok {
		d.reject(0, ReasonMalformed, "unknown principalType %s", quoted(c.PrincipalType))
		return
	}
	principal := strings.TrimSpace(c.Principal)
	switch {
	case isObjectID(principal):
		principal = strings.ToLower(principal)
	case looksLikeUPN(principal):
	default:
		d.reject(0, ReasonBadPrincipal, "principal %s is neither an object id nor a UPN", quoted(principal))
		return
	}
	d.addTarget(Target{Principal: principal, Type: typ, Command: cmd, Source: "command"})
}

// parseCommand reads a command name in any letter case.
func parseCommand(s string) (Command, bool) {
	for _, c := range []Command{CommandReconcile, CommandGrant, CommandRevoke} {
		if strings.EqualFold(s, string(c)) {
			return c, true
		}
	}
	return "", false
}

// parsePrincipalType reads a principal type hint in any letter case; "resourceAccount" (the
// published OpenAPI spelling) is an alias, and an empty value means no hint.
func parsePrincipalType(s string) (PrincipalType, bool) {
	switch {
	case s == "":
		return "", true
	case strings.EqualFold(s, string(PrincipalUser)):
		return PrincipalUser, true
	case strings.EqualFold(s, string(PrincipalResourceAccount)), strings.EqualFold(s, "resourceAccount"):
		return PrincipalResourceAccount, true
	}
	return "", false
}
