package graph

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/directory"
)

// DeletedUser finds the soft-deleted user whose userPrincipalName was upn, with the
// policy's properties and DeletedAt; its UPN is returned as Graph holds it, prefixed.
//
// Graph renames a user it soft-deletes: the userPrincipalName becomes the object id without
// dashes followed by the UPN it had ("4c7e…adele@contoso.com"), which frees the UPN for a new
// user. So the lookup is GET /directory/deletedItems/microsoft.graph.user with
// $filter=endswith(userPrincipalName,'<upn>'), an advanced query (ConsistencyLevel:
// eventual and $count=true), and every answer is then matched exactly: the prefix must be the
// user's own id without dashes and the rest upn, ignoring letter case, so
// "xadele@contoso.com" never matches "adele@contoso.com". The advanced-query index lags
// behind writes: a user deleted a moment ago may not be found yet.
//
// No match is an *Error whose NotFound is true. Several deleted users that all had upn
// (the UPN was reused, then deleted again) are an error that is neither not found nor
// temporary: only the caller can say which one it means.
func (c *Client) DeletedUser(ctx context.Context, upn string) (User, error) {
	op := "find deleted user " + upn
	filter := "endswith(userPrincipalName,'" + strings.ReplaceAll(upn, "'", "''") + "')"
	headers := abs.NewRequestHeaders()
	headers.Add("ConsistencyLevel", "eventual")
	count := true
	sel := slices.Concat(userSelect, []string{"deletedDateTime"})
	first := &directory.DeletedItemsGraphUserRequestBuilderGetRequestConfiguration{
		Headers: headers,
		QueryParameters: &directory.DeletedItemsGraphUserRequestBuilderGetQueryParameters{
			Select: sel, Filter: &filter, Count: &count, Top: &c.pageSize,
		},
	}
	all := c.pages(ctx, op, sel, func(ctx context.Context, next string) (*abs.RequestInformation, error) {
		if next == "" {
			return c.sdk.Directory().DeletedItems().GraphUser().ToGetRequestInformation(ctx, first)
		}
		return c.sdk.Directory().DeletedItems().GraphUser().WithUrl(next).ToGetRequestInformation(ctx,
			&directory.DeletedItemsGraphUserRequestBuilderGetRequestConfiguration{Headers: headers})
	})
	var found []User
	for u, err := range all {
		if err != nil {
			return User{}, err
		}
		if wasUPN(u, upn) {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return User{}, &Error{Op: op, StatusCode: http.StatusNotFound, Code: "Request_ResourceNotFound",
			Message: "no deleted user had this userPrincipalName"}
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, u := range found {
		ids[i] = u.ID
	}
	return User{}, fmt.Errorf("graph: %s: %d deleted users had this userPrincipalName (%s); name one by object id",
		op, len(found), strings.Join(ids, ", "))
}

// wasUPN reports whether the deleted user u had upn: its UPN is its id without dashes, then
// upn.
func wasUPN(u User, upn string) bool {
	prefix := strings.ReplaceAll(strings.ToLower(u.ID), "-", "")
	rest, ok := strings.CutPrefix(strings.ToLower(u.UPN), prefix)
	return ok && len(prefix) == 32 && rest == strings.ToLower(upn)
}
