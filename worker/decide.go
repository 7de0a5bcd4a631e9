package worker

import (
	"cmp"
	"slices"
	"strings"
)

// Plan is what Decide wants done to one principal's assignment.
type Plan struct {
	Action Action
	Reason string
	// Put, when non-nil, is the assignment to PUT (create or replace). Its ObjectID is the
	// current assignment's, or empty when there is none: the caller fills it in.
	Put *Assignment
	// Delete says to DELETE the assignment.
	Delete bool
}

// Reasons Decide gives of its own (the rest are the verdict's).
const (
	reasonOperatorGrant     = "operator grant"
	reasonOperatorRevoke    = "operator revoke"
	reasonForeignUser       = "conflict: user assignment with other applications"
	reasonRANotManaged      = "resource accounts not managed"
	reasonNoClientIDs       = "no client ids configured"
	reasonUnknownAssignment = "assignment of unknown principal type"
)

// Decide compares what the policy wants (the verdict, or an operator's grant or revoke) with
// the assignment ACS holds now (nil for none) and returns the smallest change that respects
// ownership: only p.ClientIDs are ours to add or remove, other applications' ids are kept,
// and a resource-account assignment is removed or replaced only when
// p.ManageResourceAccounts is set. When nothing would change the Action is noop and no
// write is planned. CommandGrant and CommandRevoke bypass the verdict's eligibility (grant
// makes a user assignment unless the verdict says resource account). Pure.
func Decide(v Verdict, cmd Command, current *Assignment, p Policy) Plan {
	want, reason := v.Type, v.Reason
	switch cmd {
	case CommandGrant:
		want, reason = cmp.Or(v.Type, PrincipalUser), reasonOperatorGrant
	case CommandRevoke:
		want, reason = "", reasonOperatorRevoke
	}
	if current != nil && current.PrincipalType != PrincipalUser && current.PrincipalType != PrincipalResourceAccount {
		return Plan{Action: ActionSkip, Reason: reasonUnknownAssignment}
	}
	switch want {
	case PrincipalResourceAccount:
		return ensureResourceAccount(current, p, reason)
	case PrincipalUser:
		return ensureUser(current, p, reason)
	}
	return revoke(current, p, reason)
}

// ensureResourceAccount plans the server-consent assignment for a resource account.
func ensureResourceAccount(cur *Assignment, p Policy, reason string) Plan {
	put := &Assignment{ObjectID: objectIDOf(cur), PrincipalType: PrincipalResourceAccount}
	switch {
	case cur == nil:
		return Plan{Action: ActionGrant, Reason: reason, Put: put}
	case cur.PrincipalType == PrincipalResourceAccount:
		return Plan{Action: ActionNoop, Reason: reason}
	case len(withoutOurs(cur.ClientIDs, p.ClientIDs)) > 0:
		return Plan{Action: ActionSkip, Reason: reasonForeignUser}
	}
	// A user assignment holding only our ids: ours to replace.
	return Plan{Action: ActionGrant, Reason: reason, Put: put}
}

// ensureUser plans a user assignment holding our client ids next to anyone else's.
func ensureUser(cur *Assignment, p Policy, reason string) Plan {
	if len(p.ClientIDs) == 0 {
		return Plan{Action: ActionSkip, Reason: reasonNoClientIDs}
	}
	put := &Assignment{ObjectID: objectIDOf(cur), PrincipalType: PrincipalUser}
	switch {
	case cur == nil:
		put.ClientIDs = normalizeClientIDs(p.ClientIDs)
	case cur.PrincipalType == PrincipalResourceAccount && !p.ManageResourceAccounts:
		return Plan{Action: ActionSkip, Reason: reasonRANotManaged}
	case cur.PrincipalType == PrincipalResourceAccount:
		put.ClientIDs = normalizeClientIDs(p.ClientIDs)
	default:
		put.ClientIDs = normalizeClientIDs(append(slices.Clone(cur.ClientIDs), p.ClientIDs...))
		if slices.Equal(put.ClientIDs, normalizeClientIDs(cur.ClientIDs)) {
			return Plan{Action: ActionNoop, Reason: reason}
		}
	}
	return Plan{Action: ActionGrant, Reason: reason, Put: put}
}

// revoke plans the removal of our access: our ids out of a user assignment (DELETE when
// none remain), or the resource-account assignment when those are ours to manage.
func revoke(cur *Assignment, p Policy, reason string) Plan {
	switch {
	case cur == nil:
		return Plan{Action: ActionNoop, Reason: reason}
	case cur.PrincipalType == PrincipalResourceAccount && !p.ManageResourceAccounts:
		return Plan{Action: ActionSkip, Reason: reasonRANotManaged}
	case cur.PrincipalType == PrincipalResourceAccount:
		return Plan{Action: ActionRevoke, Reason: reason, Delete: true}
	}
	current := normalizeClientIDs(cur.ClientIDs)
	rest := withoutOurs(current, p.ClientIDs)
	switch {
	case len(rest) == len(current):
		return Plan{Action: ActionNoop, Reason: reason}
	case len(rest) == 0:
		return Plan{Action: ActionRevoke, Reason: reason, Delete: true}
	}
	return Plan{Action: ActionRevoke, Reason: reason,
		Put: &Assignment{ObjectID: cur.ObjectID, PrincipalType: PrincipalUser, ClientIDs: rest}}
}

// normalizeClientIDs returns ids lower-cased, sorted and deduplicated (GUIDs compare
// without regard to case), dropping empty strings.
func normalizeClientIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id = strings.ToLower(strings.TrimSpace(id)); id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// withoutOurs returns the normalised ids that are not ours.
func withoutOurs(ids, ours []string) []string {
	ourSet := normalizeClientIDs(ours)
	return slices.DeleteFunc(normalizeClientIDs(ids), func(id string) bool {
		_, found := slices.BinarySearch(ourSet, id)
		return found
	})
}

func objectIDOf(a *Assignment) string {
	if a == nil {
		return ""
	}
	return a.ObjectID
}
