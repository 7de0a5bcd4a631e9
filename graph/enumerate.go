package graph

import (
	"context"
	"iter"
	"slices"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/directory"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// fetchPage gets the first page of a listing when next is "", else the page at next (an
// absolute @odata.nextLink).
type fetchPage func(ctx context.Context, next string) (models.UserCollectionResponseable, error)

// pages streams the users of a listing page by page, following @odata.nextLink, so at most
// one page is held in memory. A failed page ends the sequence with its error.
func (c *Client) pages(ctx context.Context, op string, fetch fetchPage) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		next := ""
		for n := 1; ; n++ {
			page, err := fetch(ctx, next)
			if err != nil {
				yield(User{}, classify(op, err))
				return
			}
			c.pageCount.Add(1)
			for _, u := range page.GetValue() {
				if !yield(toUser(u), nil) {
					return
				}
			}
			next = deref(page.GetOdataNextLink())
			c.log.DebugContext(ctx, "graph page", "op", op, "page", n, "users", len(page.GetValue()), "more", next != "")
			if next == "" {
				return
			}
		}
	}
}

// TeamsUsers streams users holding any of the given service plans (the Teams plan ids) with
// the policy's properties selected. The plan's capabilityStatus is not filtered on: the
// policy decides. No plan ids means no users.
func (c *Client) TeamsUsers(ctx context.Context, planIDs []string) iter.Seq2[User, error] {
	return c.filterUsers(ctx, "list teams users", anyOf("assignedPlans", "p", "servicePlanId", planIDs))
}

// ResourceAccounts streams users holding any of the given licence SKUs (the Teams resource
// account SKUs) with the policy's properties selected. No SKU ids means no users.
func (c *Client) ResourceAccounts(ctx context.Context, skuIDs []string) iter.Seq2[User, error] {
	return c.filterUsers(ctx, "list resource accounts", anyOf("assignedLicenses", "l", "skuId", skuIDs))
}

// anyOf builds "coll/any(v:v/prop eq id) or ..." for the ids (GUID literals, unquoted).
func anyOf(coll, v, prop string, ids []string) string {
	terms := make([]string, 0, len(ids))
	for _, id := range ids {
		terms = append(terms, coll+"/any("+v+":"+v+"/"+prop+" eq "+strings.ToLower(id)+")")
	}
	return strings.Join(terms, " or ")
}

// filterUsers lists /users with $filter as an advanced query (ConsistencyLevel: eventual
// and $count=true, which Graph requires for filters on assignedPlans).
func (c *Client) filterUsers(ctx context.Context, op, filter string) iter.Seq2[User, error] {
	if filter == "" {
		return func(func(User, error) bool) {}
	}
	headers := abs.NewRequestHeaders()
	headers.Add("ConsistencyLevel", "eventual")
	count := true
	first := &users.UsersRequestBuilderGetRequestConfiguration{
		Headers: headers,
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{
			Select: userSelect, Filter: &filter, Count: &count, Top: &c.pageSize,
		},
	}
	return c.pages(ctx, op, func(ctx context.Context, next string) (models.UserCollectionResponseable, error) {
		if next == "" {
			return c.sdk.Users().Get(ctx, first)
		}
		return c.sdk.Users().WithUrl(next).Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{Headers: headers})
	})
}

// DeletedUsers streams soft-deleted users (deletedItems) deleted at or after since (all of
// them when since is zero), with the policy's properties and DeletedAt. The since filter is
// applied here: deletedItems listings filter poorly server-side.
func (c *Client) DeletedUsers(ctx context.Context, since time.Time) iter.Seq2[User, error] {
	first := &directory.DeletedItemsGraphUserRequestBuilderGetRequestConfiguration{
		QueryParameters: &directory.DeletedItemsGraphUserRequestBuilderGetQueryParameters{
			Select: slices.Concat(userSelect, []string{"deletedDateTime"}), Top: &c.pageSize,
		},
	}
	all := c.pages(ctx, "list deleted users", func(ctx context.Context, next string) (models.UserCollectionResponseable, error) {
		if next == "" {
			return c.sdk.Directory().DeletedItems().GraphUser().Get(ctx, first)
		}
		return c.sdk.Directory().DeletedItems().GraphUser().WithUrl(next).Get(ctx, nil)
	})
	return func(yield func(User, error) bool) {
		for u, err := range all {
			if err == nil && !since.IsZero() && u.DeletedAt.Before(since) {
				continue
			}
			if !yield(u, err) {
				return
			}
		}
	}
}
