package graph

import (
	"context"
	"fmt"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
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
	if err == nil && strings.HasPrefix(idOrUPN, "$") {
		err = quoteUserKey(info, idOrUPN)
	}
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

// quoteUserKey rewrites info's /users/{key} to /users('{key}') (a quote doubled inside), the
// form Graph needs for a userPrincipalName that starts with $: it reads /users/$x@y as a
// system segment and answers 400 (user-get, "HTTP request" tip). The query ($select) is kept.
func quoteUserKey(info *abs.RequestInformation, key string) error {
	u, err := info.GetUri()
	if err != nil {
		return err
	}
	dir, _, ok := strings.Cut(u.Path, "/users/")
	if !ok {
		return fmt.Errorf("user URL %q has no /users/ segment", u.Path)
	}
	quoted := "users('" + strings.ReplaceAll(key, "'", "''") + "')"
	q := *u
	q.Path = dir + "/" + quoted
	q.RawPath = ""
	info.SetUri(q)
	return nil
}
