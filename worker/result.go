package worker

import (
	"log/slog"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
)

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

// LogAttrs returns the result as slog attributes for the one audit line the caller writes.
// repairs appears only on a reconcile that repaired a stale write.
func (r Result) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.String(logkey.ObjectID, r.ObjectID),
		slog.String(logkey.UPN, r.UPN),
		slog.String(logkey.PrincipalType, string(r.Type)),
		slog.String(logkey.Action, string(r.Action)),
		slog.String(logkey.Reason, r.Reason),
		slog.Any(logkey.Before, r.Before),
		slog.Any(logkey.After, r.After),
		slog.String(logkey.BeforeType, string(r.BeforeType)),
		slog.String(logkey.AfterType, string(r.AfterType)),
		slog.String(logkey.CorrelationID, r.CorrelationID),
		slog.Bool(logkey.DryRun, r.DryRun),
		slog.String(logkey.Source, r.Source),
		slog.String(logkey.Command, string(r.Command)),
	}
	if r.Repairs > 0 {
		attrs = append(attrs, slog.Int(logkey.Repairs, r.Repairs))
	}
	return attrs
}
