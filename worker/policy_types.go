package worker

// Policy is what the deployment configured about who gets access and what we own.
type Policy struct {
	// ClientIDs are our Entra application client ids: the only ones the worker adds to or
	// removes from a user assignment.
	ClientIDs []string
	// ScopeGroups, when non-empty, limits eligibility to transitive members of any of them.
	ScopeGroups []string
	// AllowGuests makes guests (userType "Guest") eligible.
	AllowGuests bool
	// ManageResourceAccounts lets the worker delete resource-account assignments; without it
	// they are only ever created.
	ManageResourceAccounts bool
}

// Action is what a reconcile did (or, in a dry run, would do) to one principal.
type Action string

const (
	ActionGrant  Action = "grant"  // PUT that adds our client ids or creates the assignment
	ActionRevoke Action = "revoke" // PUT of what remains without ours, or DELETE
	ActionNoop   Action = "noop"   // already as it should be
	ActionSkip   Action = "skip"   // deliberately left alone (not ours to change)
)
