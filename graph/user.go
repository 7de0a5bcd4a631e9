package graph

import (
	"context"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// User is one directory user with the properties the eligibility policy reads. GUIDs are
// lower-case. DeletedAt is zero for a live user.
type User struct {
	ID             string
	UPN            string
	AccountEnabled bool
	UserType       string // "Member" or "Guest"
	Department     string
	SKUs           []string // assignedLicenses[].skuId
	Plans          []Plan   // assignedPlans
	DeletedAt      time.Time
}

// Plan is one entry of a user's assignedPlans.
type Plan struct {
	ServicePlanID    string
	CapabilityStatus string // "Enabled", "Suspended", "Deleted", ...
	Service          string
}

// userSelect is the $select every user read sends: Graph returns accountEnabled,
// assignedLicenses and assignedPlans only when they are selected.
var userSelect = []string{"id", "userPrincipalName", "accountEnabled", "assignedLicenses", "assignedPlans", "userType", "department"}

// User reads one user by object id or userPrincipalName. A user that does not exist (or is
// soft-deleted) is an *Error whose NotFound is true; an answer lacking a selected property
// is a temporary *Error whose Incomplete is true, never a user with that property false or
// empty.
func (c *Client) User(ctx context.Context, idOrUPN string) (User, error) {
	op := "get user " + idOrUPN
	info, err := c.sdk.Users().ByUserId(idOrUPN).ToGetRequestInformation(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userSelect},
	})
	if err != nil {
		return User{}, classify(op, err)
	}
	var w wireUser
	if err := c.getJSON(ctx, info, &w); err != nil {
		return User{}, classify(op, err)
	}
	u, err := w.user(userSelect)
	if err != nil {
		return User{}, classify(op, err)
	}
	return u, nil
}
