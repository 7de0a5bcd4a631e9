package graph

import (
	"context"
	"log/slog"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
)

// SubscriptionSpec is what CreateSubscription asks Graph for. LifecycleNotificationURL can be
// set only at creation. ClientState is a secret echoed in every notification: it is never
// logged.
type SubscriptionSpec struct {
	Resource                 string // "users", "groups", ...
	ChangeType               string // "updated,deleted"
	NotificationURL          string // https webhook or "EventGrid:?azuresubscriptionid=…&…"
	LifecycleNotificationURL string
	ClientState              string
	ExpirationDateTime       time.Time // at most 41,760 minutes ahead for users and groups
}

// Subscription is a change-notification subscription as Graph holds it. Its String and
// LogValue leave ClientState out.
type Subscription struct {
	ID                       string
	Resource                 string
	ChangeType               string
	NotificationURL          string
	LifecycleNotificationURL string
	ExpirationDateTime       time.Time
	ClientState              string // never logged
}

// LogValue logs the subscription without its client state.
func (s Subscription) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", s.ID), slog.String("resource", s.Resource), slog.String("change_type", s.ChangeType),
		slog.String("notification_url", s.NotificationURL), slog.Time("expires", s.ExpirationDateTime))
}

// String describes the subscription without its client state.
func (s Subscription) String() string {
	return "subscription " + s.ID + " on " + s.Resource + " (" + s.ChangeType + ") to " + s.NotificationURL +
		" until " + s.ExpirationDateTime.UTC().Format(time.RFC3339)
}

// CreateSubscription creates a subscription. When this application already has one for the
// same resource and changeType — whatever its notification URL — Graph answers 409
// "Subscription Id <id> already exists for the requested combination": the *Error's
// Conflict is true.
func (c *Client) CreateSubscription(ctx context.Context, spec SubscriptionSpec) (Subscription, error) {
	body := models.NewSubscription()
	body.SetResource(&spec.Resource)
	body.SetChangeType(&spec.ChangeType)
	body.SetNotificationUrl(&spec.NotificationURL)
	if spec.LifecycleNotificationURL != "" {
		body.SetLifecycleNotificationUrl(&spec.LifecycleNotificationURL)
	}
	if spec.ClientState != "" {
		body.SetClientState(&spec.ClientState)
	}
	exp := spec.ExpirationDateTime.UTC()
	body.SetExpirationDateTime(&exp)
	s, err := c.sdk.Subscriptions().Post(ctx, body, nil)
	if err != nil {
		return Subscription{}, classify("create subscription on "+spec.Resource, err)
	}
	return toSubscription(s), nil
}

// ListSubscriptions returns the subscriptions this application owns in the tenant. Graph
// does not return their clientState in a listing: ClientState is empty.
func (c *Client) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	var out []Subscription
	page, err := c.sdk.Subscriptions().Get(ctx, nil)
	for err == nil {
		for _, s := range page.GetValue() {
			out = append(out, toSubscription(s))
		}
		next := deref(page.GetOdataNextLink())
		if next == "" {
			return out, nil
		}
		page, err = c.sdk.Subscriptions().WithUrl(next).Get(ctx, nil)
	}
	return nil, classify("list subscriptions", err)
}

// RenewSubscription moves the subscription's expiration to exp.
func (c *Client) RenewSubscription(ctx context.Context, id string, exp time.Time) (Subscription, error) {
	body := models.NewSubscription()
	exp = exp.UTC()
	body.SetExpirationDateTime(&exp)
	s, err := c.sdk.Subscriptions().BySubscriptionId(id).Patch(ctx, body, nil)
	if err != nil {
		return Subscription{}, classify("renew subscription "+id, err)
	}
	return toSubscription(s), nil
}

// ReauthorizeSubscription answers a reauthorizationRequired lifecycle notification.
func (c *Client) ReauthorizeSubscription(ctx context.Context, id string) error {
	return classify("reauthorize subscription "+id,
		c.sdk.Subscriptions().BySubscriptionId(id).Reauthorize().Post(ctx, nil))
}

// DeleteSubscription deletes the subscription; an unknown id is an *Error whose NotFound is
// true.
func (c *Client) DeleteSubscription(ctx context.Context, id string) error {
	return classify("delete subscription "+id, c.sdk.Subscriptions().BySubscriptionId(id).Delete(ctx, nil))
}

func toSubscription(s models.Subscriptionable) Subscription {
	out := Subscription{
		ID:                       deref(s.GetId()),
		Resource:                 deref(s.GetResource()),
		ChangeType:               deref(s.GetChangeType()),
		NotificationURL:          deref(s.GetNotificationUrl()),
		LifecycleNotificationURL: deref(s.GetLifecycleNotificationUrl()),
		ClientState:              deref(s.GetClientState()),
	}
	if t := s.GetExpirationDateTime(); t != nil {
		out.ExpirationDateTime = t.UTC()
	}
	return out
}
