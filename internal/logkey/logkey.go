// Package logkey holds the structured-log keys of every package of the service, declared
// once so the same field has the same name whichever package logs it. They are snake_case
// and stable: dashboards and alerts depend on them.
package logkey

// The audit record of one reconcile (worker.Result.LogAttrs).
const (
	ObjectID      = "object_id"
	UPN           = "upn"
	PrincipalType = "principal_type"
	Action        = "action"
	Reason        = "reason"
	Before        = "before"
	After         = "after"
	BeforeType    = "before_type"
	AfterType     = "after_type"
	CorrelationID = "ms_cv"
	DryRun        = "dry_run"
	Source        = "source"
	Command       = "command"
	Repairs       = "repairs" // only when > 0
)

// The message loop: receive, work, settle.
const (
	MessageID      = "message_id"
	DeliveryCount  = "delivery_count"
	Outcome        = "outcome"
	Wanted         = "wanted" // the outcome a failed settlement wanted
	SettleError    = "settle_error"
	Description    = "description"
	Error          = "error"
	Attempt        = "attempt"
	Wait           = "wait"
	Coalesced      = "coalesced"
	GroupID        = "group_id"
	Members        = "members"
	SubscriptionID = "subscription_id"
	LifecycleEvent = "lifecycle_event"
	Reconciled     = "reconciled"
	Rejected       = "rejected"
	DrainTimeout   = "drain_timeout"
	IdleTimeout    = "idle_timeout"
)

// Backfill and resync: one row, and the run's summary.
const (
	Phase           = "phase"
	Kind            = "kind"
	Why             = "why"
	PlannedAction   = "planned_action"
	Candidates      = "candidates"
	Planned         = "planned"
	Applied         = "applied"
	Assigned        = "assigned"
	WithheldRevokes = "withheld_revokes"
	StaleRows       = "stale_rows"
	ScopeListed     = "scope_listed"
	Brake           = "brake"
	Enqueued        = "enqueued"
	Duration        = "duration"
	ACSReads        = "acs_reads"
	ACSWrites       = "acs_writes"
	DirectoryPages  = "directory_pages"
	DirectoryCalls  = "directory_calls"
	LimitMin        = "limit_min"
	LimitMax        = "limit_max"
	Failed          = "failed"
	Errors          = "errors"
)

// The subscription keeper.
const (
	Resource               = "resource"
	Expires                = "expires"
	How                    = "how"
	RetryIn                = "retry_in"
	PreviousSubscriptionID = "previous_subscription_id"
)

// The relay.
const (
	Remote        = "remote"
	RejectedItems = "rejected_items"
)
