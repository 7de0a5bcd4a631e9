package worker

// Decoded is what one queue message asks for, after decoding and trust checks.
// A message may carry several items; one bad item is reported in Rejected and never
// poisons the others.
type Decoded struct {
	// Principals to reconcile (deduplicated within the message, first occurrence wins).
	Principals []Target
	// Groups whose membership changed and whose members must be listed through the directory
	// because the notification carried no members@delta.
	Groups []string
	// Lifecycle events for the subscription keeper.
	Lifecycle []LifecycleEvent
	// Probe is true when the message is a reachability probe or an Event Grid validation
	// event: complete and log, never act.
	Probe bool
	// Rejected lists items that were dropped from the message with the reason. When the
	// message yields nothing to act on and Rejected is non-empty, the message is
	// dead-lettered with the first item's reason.
	Rejected []*PermanentError
}

// Command is what a Target asks the reconcile to do.
type Command string

const (
	// CommandReconcile converges the principal to the policy (the default for notifications).
	CommandReconcile Command = "reconcile"
	// CommandGrant is an operator's explicit grant: add our client ids (or the resource-account
	// assignment) regardless of the policy.
	CommandGrant Command = "grant"
	// CommandRevoke is an operator's explicit revoke: remove our client ids (or the
	// resource-account assignment) regardless of the policy.
	CommandRevoke Command = "revoke"
)

// Target is one principal to reconcile.
type Target struct {
	Principal string        // object id (GUID, lower-case) or userPrincipalName
	Type      PrincipalType // hint; empty when not known
	Command   Command
	// Source says where it came from, for the audit log ("users/updated", "users/deleted",
	// "groups/members@delta", "command").
	Source string
}

// LifecycleEvent is a Graph subscription lifecycle notification.
type LifecycleEvent struct {
	SubscriptionID string
	Event          string // "reauthorizationRequired", "subscriptionRemoved", "missed", or unknown as sent
}
