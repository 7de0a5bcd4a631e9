package worker

import "log/slog"

// Result is the audit record of one reconcile: what the principal is, what its assignment
// was and is now (or, in a dry run, would be), and why.
type Result struct {
	ObjectID string // lower-case object id; empty when a UPN was not found
	UPN      string
	// Type is what the principal was judged to be: PrincipalUser, PrincipalResourceAccount,
	// or "" when it is not eligible.
	Type   PrincipalType
	Action Action
	Reason string
	// Before and After are the assignment's client ids; nil when there is no assignment (a
	// resource-account assignment has an empty, non-nil list).
	Before, After         []string
	BeforeType, AfterType PrincipalType // "" when there is no assignment
	// CorrelationID is the ms-cv of the write, or of the read when nothing was written.
	CorrelationID string
	DryRun        bool
	Source        string
	Command       Command
	// Repairs counts the writes made again because the directory read after a write gave
	// another verdict than the read before it: another replica, or the directory, changed
	// the principal while this reconcile was writing. 0 in the usual case.
	Repairs int
}

// Audit log keys (snake_case, stable: dashboards and alerts depend on them).
const (
	resultKeyObjectID      = "object_id"
	resultKeyUPN           = "upn"
	resultKeyPrincipalType = "principal_type"
	resultKeyAction        = "action"
	resultKeyReason        = "reason"
	resultKeyBefore        = "before"
	resultKeyAfter         = "after"
	resultKeyBeforeType    = "before_type"
	resultKeyAfterType     = "after_type"
	resultKeyCorrelationID = "ms_cv"
	resultKeyDryRun        = "dry_run"
	resultKeySource        = "source"
	resultKeyCommand       = "command"
	resultKeyRepairs       = "repairs" // only when > 0
)

// LogAttrs returns the result as slog attributes for the one audit line the caller writes.
// repairs appears only on a reconcile that repaired a stale write.
func (r Result) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.String(resultKeyObjectID, r.ObjectID),
		slog.String(resultKeyUPN, r.UPN),
		slog.String(resultKeyPrincipalType, string(r.Type)),
		slog.String(resultKeyAction, string(r.Action)),
		slog.String(resultKeyReason, r.Reason),
		slog.Any(resultKeyBefore, r.Before),
		slog.Any(resultKeyAfter, r.After),
		slog.String(resultKeyBeforeType, string(r.BeforeType)),
		slog.String(resultKeyAfterType, string(r.AfterType)),
		slog.String(resultKeyCorrelationID, r.CorrelationID),
		slog.Bool(resultKeyDryRun, r.DryRun),
		slog.String(resultKeySource, r.Source),
		slog.String(resultKeyCommand, string(r.Command)),
	}
	if r.Repairs > 0 {
		attrs = append(attrs, slog.Int(resultKeyRepairs, r.Repairs))
	}
	return attrs
}
