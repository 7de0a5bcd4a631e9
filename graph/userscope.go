package graph

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// UserInGroups reads the user (by object id, with User's $select) and which of groupIDs it
// is a transitive member of, in one JSON batch: one round trip and one HTTP request for the
// two reads, each still throttled and costed on its own.
//
// The membership read is GET users/{id}/transitiveMemberOf?$select=id&$top=999
// (user-list-transitivememberof): a standard query — no ConsistencyLevel header, so it reads
// the directory as directly as the user read does, not the eventually consistent index of
// the advanced queries — whose page size may be up to 999. It costs 1 resource unit a page
// (throttling-limits, identity and access: transitiveMemberOf base 2, $select −1), where
// checkMemberGroups costs 4 and getMemberGroups 2 — and unlike getMemberGroups it pages
// instead of failing past 11,000 groups. Its items are groups, directory roles and
// administrative units; only ids are compared, and a role or unit id never equals a
// group's. The page's least privileged application permission is User.Read.All: without a
// permission to read groups they come back with limited information, @odata.type and id
// (api-reference/includes/limited-info.md), which is all this read uses. The first page comes in the batch; further pages (a user in more than 999
// groups) are read one by one until a page matches or the last page has been read, so an
// empty result means every page was read. Matched holds the lower-cased ids of groupIDs
// found on the pages read (all of them when no page had to be skipped).
//
// Errors are classified as the single calls': the user's 404 with Graph's not-found code is
// an *Error whose NotFound is true; a membership 404 once the user was read is a temporary
// incomplete *Error, never not found; a missing response, a response for an id not sent, a
// status other than 200 on success, a body without value, an item without id or a user
// lacking a selected property is a temporary incomplete *Error, never a verdict. An inner
// 429, 503 or 504 is retried as the client's retry handler retries a call — up to
// Options.MaxRetries times, after its Retry-After (or the backoff when it has none), never
// waiting more than 3 minutes in all — by a new batch holding only the requests that failed;
// past that it is returned with its RetryAfter. A user read that failed for good (not found,
// say) ends the call at once with its error, whatever the membership read answered. With
// no groupIDs it is User.
func (c *Client) UserInGroups(ctx context.Context, userID string, groupIDs []string) (User, []string, error) {
	if len(groupIDs) == 0 {
		u, err := c.User(ctx, userID)
		return u, nil, err
	}
	userOp, memberOp := "get user "+userID, "list memberships of "+userID
	path := userPath(userID)
	items := map[string]batchItem{
		"user":   {ID: "user", Method: "GET", URL: path + "?$select=" + strings.Join(userSelect, ",")},
		"member": {ID: "member", Method: "GET", URL: path + "/transitiveMemberOf?$select=id&$top=" + strconv.Itoa(int(c.pageSize))},
	}
	answers := map[string]batchAnswer{}
	var waited time.Duration
	for attempt := 1; len(items) > 0; attempt++ {
		send := make([]batchItem, 0, len(items))
		for _, id := range []string{"user", "member"} {
			if it, ok := items[id]; ok {
				send = append(send, it)
			}
		}
		batchOp := "batch of " + userOp + " and " + memberOp
		got, err := c.sendBatch(ctx, batchOp, send)
		if err != nil {
			return User{}, nil, classify(batchOp, err)
		}
		var again *Error
		for _, it := range send {
			a, ok := got[it.ID]
			if !ok {
				return User{}, nil, classify(userOp+" and "+memberOp, &errIncomplete{what: "a response for request " + it.ID})
			}
			if retriable(a.Status) {
				if again == nil || answerError("", a).RetryAfterDuration > again.RetryAfterDuration {
					again = answerError(map[string]string{"user": userOp, "member": memberOp}[it.ID], a)
				}
				continue
			}
			answers[it.ID] = a
			delete(items, it.ID)
		}
		if a, ok := answers["user"]; again == nil || ok && a.Status >= 300 {
			break // done, or the user read failed for good: the membership cannot matter
		}
		wait := batchWait(again, attempt)
		if attempt > c.maxRetries || waited+wait > maxRetryWait {
			return User{}, nil, again
		}
		c.log.Debug("graph batch retry", "op", again.Op, "status", again.StatusCode, "attempt", attempt, "wait", wait, "waited", waited)
		if err := sleep(ctx, wait); err != nil {
			return User{}, nil, classify(again.Op, err)
		}
		waited += wait
	}
	u, err := userAnswer(userOp, answers["user"]) // first: its failure (not found) decides
	if err != nil {
		return User{}, nil, err
	}
	in, err := c.memberAnswer(ctx, memberOp, userID, answers["member"], groupIDs)
	return u, in, err
}

// userPath is the batch url of a user: /users/{id}, or /users('{key}') for a key that
// starts with $ (see quoteUserKey).
func userPath(key string) string {
	if strings.HasPrefix(key, "$") {
		return "/users('" + url.PathEscape(strings.ReplaceAll(key, "'", "''")) + "')"
	}
	return "/users/" + url.PathEscape(key)
}

// userAnswer reads the user request's answer as User reads a single call's.
func userAnswer(op string, a batchAnswer) (User, error) {
	if a.Status >= 300 {
		return User{}, answerError(op, a)
	}
	if err := succeeded(a); err != nil {
		return User{}, classify(op, err)
	}
	u, err := a.Body.wireUser.user(userSelect)
	if err != nil {
		return User{}, classify(op, err)
	}
	return u, nil
}

// memberAnswer reads the first membership page from the batch and, until one matches,
// the pages after it.
func (c *Client) memberAnswer(ctx context.Context, op, userID string, a batchAnswer, groupIDs []string) ([]string, error) {
	if a.Status >= 300 {
		e := answerError(op, a)
		if e.NotFound() { // the user was just read: this 404 says nothing about the user
			return nil, &Error{Op: op, Code: e.Code, RequestID: e.RequestID, incomplete: true,
				Message: "404 right after the user was read; the answer is not trusted"}
		}
		return nil, e
	}
	want := make(map[string]bool, len(groupIDs))
	for _, g := range groupIDs {
		want[strings.ToLower(g)] = true
	}
	if err := succeeded(a); err != nil {
		return nil, classify(op, err)
	}
	page := a.Body.wireObjects
	members := c.sdk.Users().ByUserId(userID).TransitiveMemberOf()
	for {
		if page.Value == nil {
			return nil, classify(op, &errIncomplete{what: "its value array"})
		}
		var in []string
		for _, o := range *page.Value {
			if o.ID == "" {
				return nil, classify(op, &errIncomplete{what: "the id of an item"})
			}
			if id := strings.ToLower(o.ID); want[id] && !slices.Contains(in, id) {
				in = append(in, id)
			}
		}
		if len(in) > 0 || page.NextLink == "" {
			return in, nil
		}
		info, err := members.WithUrl(page.NextLink).ToGetRequestInformation(ctx, &users.ItemTransitiveMemberOfRequestBuilderGetRequestConfiguration{})
		if err != nil {
			return nil, classify(op, err)
		}
		page = wireObjects{}
		if err := c.getJSON(ctx, info, &page); err != nil {
			return nil, classify(op, err)
		}
	}
}
