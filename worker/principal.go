package worker

import (
	"context"
	"iter"
)

// PrincipalType says which kind of access assignment a principal holds or should hold.
// The zero value means "not known yet" (a hint that was not given).
type PrincipalType string

const (
	// PrincipalUser is a Teams user: an assignment with principalType "user" and client ids.
	PrincipalUser PrincipalType = "user"
	// PrincipalResourceAccount is a Teams resource account: the server-consent assignment.
	PrincipalResourceAccount PrincipalType = "teamsResourceAccount"
)

// User is the directory's view of one principal, read now. It carries only the properties
// the eligibility policy looks at (Graph returns accountEnabled, assignedLicenses and
// assignedPlans only when they are $select-ed).
type User struct {
	ID             string // Entra object id (GUID)
	UPN            string // userPrincipalName
	AccountEnabled bool
	UserType       string // "Member" or "Guest"; empty is treated as "Member"
	Department     string
	SKUs           []string       // assignedLicenses[].skuId, lower-case GUIDs
	Plans          []AssignedPlan // assignedPlans
}

// AssignedPlan is one entry of a user's assignedPlans.
type AssignedPlan struct {
	ServicePlanID    string // lower-case GUID; the policy matches on this, never on Service
	CapabilityStatus string // "Enabled", "Suspended", "Deleted", "Warning", "LockedOut"
	Service          string
}

// Assignment is a Teams Phone extensibility access assignment as stored by ACS.
type Assignment struct {
	ObjectID      string
	PrincipalType PrincipalType
	ClientIDs     []string // only for PrincipalUser
	// CorrelationID is the ms-cv header of the response that produced this value; it is
	// logged for support cases and never sent.
	CorrelationID string
}

// directory is what the worker reads from Microsoft Graph. The graph package's client is
// adapted to it in cmd. Errors follow the behaviour contract in errors.go: a principal that
// does not exist is an error whose NotFound() is true; throttling, 5xx, timeouts and auth
// failures are never NotFound.
type directory interface {
	// User reads one user by object id or userPrincipalName.
	User(ctx context.Context, idOrUPN string) (User, error)
	// DeletedUser finds the soft-deleted user whose userPrincipalName was upn (a deleted
	// user's UPN carries its object id as a prefix in Graph); not found when there is none.
	DeletedUser(ctx context.Context, upn string) (User, error)
	// MemberOf returns which of groupIDs the user is a transitive member of.
	MemberOf(ctx context.Context, userID string, groupIDs []string) ([]string, error)
	// GroupMembers streams the object ids of a group's transitive user members.
	GroupMembers(ctx context.Context, groupID string) iter.Seq2[string, error]
}

// Assignments is what the worker reads and writes in ACS, for the configured tenant. The acs
// package's client is adapted to it in cmd. Get of an absent assignment returns an error
// whose NotFound() is true.
type Assignments interface {
	Get(ctx context.Context, objectID string) (Assignment, error)
	// Put creates or replaces the assignment (last writer wins).
	Put(ctx context.Context, a Assignment) (Assignment, error)
	// Delete removes the assignment and returns the response's correlation id. Deleting an
	// absent assignment returns an error whose NotFound() is true.
	Delete(ctx context.Context, objectID string) (correlationID string, err error)
}
