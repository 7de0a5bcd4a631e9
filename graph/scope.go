package graph

import (
	"context"
	"iter"
	"strings"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// maxCheckGroups is Graph's limit of group ids per checkMemberGroups call.
const maxCheckGroups = 20

// MemberOf returns which of groupIDs (lower-cased) the user is a transitive member of, with
// one checkMemberGroups call per 20 groups. A user that does not exist is an *Error whose
// NotFound is true.
func (c *Client) MemberOf(ctx context.Context, userID string, groupIDs []string) ([]string, error) {
	var out []string
	for chunk := range chunks(groupIDs, maxCheckGroups) {
		body := users.NewItemCheckMemberGroupsPostRequestBody()
		body.SetGroupIds(chunk)
		op := "check member groups of " + userID
		info, err := c.sdk.Users().ByUserId(userID).CheckMemberGroups().ToPostRequestInformation(ctx, body, nil)
		if err != nil {
			return nil, classify(op, err)
		}
		var resp wireStrings
		if err := c.getJSON(ctx, info, &resp); err != nil {
			return nil, classify(op, err)
		}
		if resp.Value == nil {
			// Without its value the answer says nothing; read as "member of none" it
			// would revoke.
			return nil, classify(op, &errIncomplete{what: "its value array"})
		}
		for _, g := range resp.Value {
			out = append(out, strings.ToLower(g))
		}
	}
	return out, nil
}

func chunks(ids []string, n int) iter.Seq[[]string] {
	return func(yield func([]string) bool) {
		for len(ids) > 0 {
			k := min(n, len(ids))
			if !yield(ids[:k]) {
				return
			}
			ids = ids[k:]
		}
	}
}

// GroupMembers streams the object ids of the group's transitive user members, page by page.
func (c *Client) GroupMembers(ctx context.Context, groupID string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for u, err := range c.transitiveUsers(ctx, groupID, []string{"id"}) {
			if !yield(u.ID, err) || err != nil {
				return
			}
		}
	}
}

// ScopeMembers streams the transitive user members of each group in turn, with the policy's
// properties selected. A user in two groups appears twice; callers deduplicate.
func (c *Client) ScopeMembers(ctx context.Context, groupIDs []string) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		for _, g := range groupIDs {
			for u, err := range c.transitiveUsers(ctx, g, userSelect) {
				if !yield(u, err) || err != nil {
					return
				}
			}
		}
	}
}

// transitiveUsers lists the group's transitive user members. The OData cast to
// microsoft.graph.user is an advanced query (aad-advanced-queries: "Use of OData cast with
// transitive members list"), so every page is sent with ConsistencyLevel: eventual and
// $count=true (the next links carry $count on). Its answers come from an eventually
// consistent index and may lag behind direct reads.
func (c *Client) transitiveUsers(ctx context.Context, groupID string, sel []string) iter.Seq2[User, error] {
	headers := abs.NewRequestHeaders()
	headers.Add("ConsistencyLevel", "eventual")
	count := true
	first := &groups.ItemTransitiveMembersGraphUserRequestBuilderGetRequestConfiguration{
		Headers: headers,
		QueryParameters: &groups.ItemTransitiveMembersGraphUserRequestBuilderGetQueryParameters{
			Select: sel, Top: &c.pageSize, Count: &count,
		},
	}
	members := c.sdk.Groups().ByGroupId(groupID).TransitiveMembers().GraphUser()
	return c.pages(ctx, "list transitive members of "+groupID, sel, func(ctx context.Context, next string) (*abs.RequestInformation, error) {
		if next == "" {
			return members.ToGetRequestInformation(ctx, first)
		}
		return members.WithUrl(next).ToGetRequestInformation(ctx,
			&groups.ItemTransitiveMembersGraphUserRequestBuilderGetRequestConfiguration{Headers: headers})
	})
}
