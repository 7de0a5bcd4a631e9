package graph

import (
	"context"
	"errors"

	"github.com/microsoftgraph/msgraph-sdk-go/groups"
)

// errNoGroupID is an answer to a group read that does not name the group: not understood,
// so neither "exists" nor "missing".
var errNoGroupID = errors.New("answer carries no group id")

// GroupExists reads the group with $select=id. Only a 404 Request_ResourceNotFound means the
// directory holds no such group (false, nil); any other failure (throttling, 5xx, a refused
// token, an answer without the id) is an *Error, never "missing".
func (c *Client) GroupExists(ctx context.Context, groupID string) (bool, error) {
	op := "get group " + groupID
	info, err := c.sdk.Groups().ByGroupId(groupID).ToGetRequestInformation(ctx, &groups.GroupItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.GroupItemRequestBuilderGetQueryParameters{Select: []string{"id"}},
	})
	if err != nil {
		return false, classify(op, err)
	}
	var w struct {
		ID string `json:"id"`
	}
	err = classify(op, c.getJSON(ctx, info, &w))
	var ge *Error
	switch {
	case errors.As(err, &ge) && ge.NotFound():
		return false, nil
	case err != nil:
		return false, err
	case w.ID == "":
		return false, classify(op, errNoGroupID)
	}
	return true, nil
}
