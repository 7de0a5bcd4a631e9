package graph

import (
	"context"
	"iter"
	"slices"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/directory"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// pageRequest builds the request for the first page of a listing when next is "", else for
// the page at next (an absolute @odata.nextLink).
type pageRequest func(ctx context.Context, next string) (*abs.RequestInformation, error)

// pages streams the users of a listing page by page, following @odata.nextLink. While the
// caller consumes one page the next is already being read, so a consumer that is slower
// than Graph never waits at a page boundary; at most two pages are held in memory. A failed
// page ends the sequence with its error, and so does a page without its value array or an
// item lacking a property of sel (the $select sent): an incomplete answer is an error, never
// a user with that property false or empty. A caller that stops early cancels the read ahead.
func (c *Client) pages(ctx context.Context, op string, sel []string, request pageRequest) iter.Seq2[User, error] {
	type result struct {
		page wirePage
		err  error
	}
	return func(yield func(User, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		var ahead chan result
		defer func() {
			cancel()
			if ahead != nil {
				<-ahead // the read ahead ends with ctx; never leave it running
			}
		}()
		read := func(next string) chan result {
			ch := make(chan result, 1)
			go func() {
				var r result
				info, err := request(ctx, next)
				if err == nil {
					err = c.getJSON(ctx, info, &r.page)
				}
				if err == nil && r.page.Value == nil {
					err = &errIncomplete{what: "its value array"}
				}
				r.err = err
				ch <- r
			}()
			return ch
		}
		ahead = read("")
		for n := 1; ; n++ {
			r := <-ahead
			ahead = nil
			if r.err != nil {
				yield(User{}, classify(op, r.err))
				return
			}
			c.pageCount.Add(1)
			next := r.page.NextLink
			if next != "" {
				ahead = read(next)
			}
			c.log.DebugContext(ctx, "graph page", "op", op, "page", n, "users", len(r.page.Value), "more", next != "")
			for i := range r.page.Value {
				u, err := r.page.Value[i].user(sel)
				if err != nil {
					yield(User{}, classify(op, err))
					return
				}
				if !yield(u, nil) {
					return
				}
			}
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
	return c.pages(ctx, op, userSelect, func(ctx context.Context, next string) (*abs.RequestInformation, error) {
		if next == "" {
			return c.sdk.Users().ToGetRequestInformation(ctx, first)
		}
		return c.sdk.Users().WithUrl(next).ToGetRequestInformation(ctx, &users.UsersRequestBuilderGetRequestConfiguration{Headers: headers})
	})
}

// DeletedUsers streams soft-deleted users (deletedItems) deleted at or after since (all of
// them when since is zero), with the policy's properties and DeletedAt. The since filter is
// applied here: deletedItems listings filter poorly server-side.
func (c *Client) DeletedUsers(ctx context.Context, since time.Time) iter.Seq2[User, error] {
	sel := slices.Concat(userSelect, []string{"deletedDateTime"})
	first := &directory.DeletedItemsGraphUserRequestBuilderGetRequestConfiguration{
		QueryParameters: &directory.DeletedItemsGraphUserRequestBuilderGetQueryParameters{
			Select: sel, Top: &c.pageSize,
		},
	}
	all := c.pages(ctx, "list deleted users", sel, func(ctx context.Context, next string) (*abs.RequestInformation, error) {
		if next == "" {
			return c.sdk.Directory().DeletedItems().GraphUser().ToGetRequestInformation(ctx, first)
		}
		return c.sdk.Directory().DeletedItems().GraphUser().WithUrl(next).ToGetRequestInformation(ctx, nil)
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
