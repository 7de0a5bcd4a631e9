package graph

import (
	"context"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
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
// soft-deleted) is an *Error whose NotFound is true.
func (c *Client) User(ctx context.Context, idOrUPN string) (User, error) {
	u, err := c.sdk.Users().ByUserId(idOrUPN).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userSelect},
	})
	if err != nil {
		return User{}, classify("get user "+idOrUPN, err)
	}
	return toUser(u), nil
}

// toUser copies an SDK user into our struct.
func toUser(u models.Userable) User {
	out := User{
		ID:         strings.ToLower(deref(u.GetId())),
		UPN:        deref(u.GetUserPrincipalName()),
		UserType:   deref(u.GetUserType()),
		Department: deref(u.GetDepartment()),
	}
	if b := u.GetAccountEnabled(); b != nil {
		out.AccountEnabled = *b
	}
	for _, l := range u.GetAssignedLicenses() {
		if id := l.GetSkuId(); id != nil {
			out.SKUs = append(out.SKUs, strings.ToLower(id.String()))
		}
	}
	for _, p := range u.GetAssignedPlans() {
		plan := Plan{CapabilityStatus: deref(p.GetCapabilityStatus()), Service: deref(p.GetService())}
		if id := p.GetServicePlanId(); id != nil {
			plan.ServicePlanID = strings.ToLower(id.String())
		}
		out.Plans = append(out.Plans, plan)
	}
	if t := u.GetDeletedDateTime(); t != nil {
		out.DeletedAt = t.UTC()
	}
	return out
}
