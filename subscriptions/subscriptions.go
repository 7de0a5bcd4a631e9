package subscriptions

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// Subscription is a Microsoft Graph change-notification subscription as Graph reports it.
type Subscription struct {
	ID                       string
	Resource                 string // "users", "groups/<id>"
	ChangeType               string // "updated,deleted"
	NotificationURL          string
	LifecycleNotificationURL string
	ExpirationDateTime       time.Time
}

// SubscriptionSpec is what the keeper asks Graph to create. ClientState is a secret.
type SubscriptionSpec struct {
	Resource                 string
	ChangeType               string
	NotificationURL          string
	LifecycleNotificationURL string
	ClientState              string
	ExpirationDateTime       time.Time
}

// subscriptionAPI is the part of Graph the keeper calls; the graph package's client is
// adapted to it in cmd. A CreateSubscription error whose Conflict() is true means the
// subscription already exists; other errors follow errors.go (NotFound, Temporary, ...).
type subscriptionAPI interface {
	ListSubscriptions(ctx context.Context) ([]Subscription, error)
	CreateSubscription(ctx context.Context, s SubscriptionSpec) (Subscription, error)
	RenewSubscription(ctx context.Context, id string, exp time.Time) (Subscription, error)
	ReauthorizeSubscription(ctx context.Context, id string) error
	DeleteSubscription(ctx context.Context, id string) error
}

type conflictError interface{ Conflict() bool }

func isConflict(err error) bool {
	var e conflictError
	return errors.As(err, &e) && e.Conflict()
}

const (
	// MaxSubscriptionLifetime is the longest expiry Graph accepts for users and groups.
	MaxSubscriptionLifetime = 41760 * time.Minute
	// DefaultSubscriptionLifetime leaves Graph's clock and our request time a margin.
	DefaultSubscriptionLifetime = 41000 * time.Minute
	// DefaultSubscriptionChangeType covers changes and (soft and hard) deletions.
	DefaultSubscriptionChangeType = "updated,deleted"
)

// SubscriptionResources returns the Graph resources to subscribe to: every user, and each
// scope group as "groups/<id>". Graph cannot filter a "groups" subscription by id, but a
// subscription to one group reports its membership changes (members@delta), which is what
// scope eligibility needs.
func SubscriptionResources(scopeGroups []string) []string {
	out := []string{"users"}
	for _, g := range scopeGroups {
		out = append(out, "groups/"+strings.ToLower(strings.TrimSpace(g)))
	}
	return out
}

// normResource is a resource path as the keeper compares them: lower case, no outer slashes.
func normResource(r string) string { return strings.ToLower(strings.Trim(strings.TrimSpace(r), "/")) }

// sortSubscriptions orders subscriptions by resource, then id, so listings are stable.
func sortSubscriptions(subs []Subscription) {
	slices.SortFunc(subs, func(a, b Subscription) int {
		return cmp.Or(cmp.Compare(normResource(a.Resource), normResource(b.Resource)), cmp.Compare(a.ID, b.ID))
	})
}

// cutPrefixFold is strings.CutPrefix ignoring letter case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
