package subscriptions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// KeeperOptions configures a Keeper. Zero values take the documented defaults.
type KeeperOptions struct {
	// Resources to subscribe to (see SubscriptionResources). Required.
	Resources []string
	// ChangeType; empty means DefaultSubscriptionChangeType.
	ChangeType string
	// NotificationURL is the Event Grid target (see EventGridURL) or the relay's HTTPS URL.
	// Required. Subscriptions pointing elsewhere are not ours and are left alone.
	NotificationURL string
	// LifecycleNotificationURL; empty means NotificationURL. Graph takes it only at creation.
	LifecycleNotificationURL string
	// ClientState is the secret every notification must echo. Never logged.
	ClientState string
	// MaxLifetime is how far ahead a create or renewal sets the expiry; zero means
	// DefaultSubscriptionLifetime, more than MaxSubscriptionLifetime is an error.
	MaxLifetime time.Duration
	// RenewWhenRemaining is the fraction of MaxLifetime left at which Run renews; zero
	// means 0.25.
	RenewWhenRemaining float64
	// Recheck is how often Run lists the subscriptions again, to recreate one removed
	// without a lifecycle event reaching us; zero means one hour.
	Recheck time.Duration
	// Now and After are the clock; nil means time.Now and time.After.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Backoff is the wait before retry number attempt (1, 2, ...) of a failed renewal or
	// ensure; nil means exponential from 30 s to 30 min with jitter. A longer Retry-After
	// from Graph wins.
	Backoff func(attempt int) time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Resync asks for a full reconcile of the scope (it must not block); nil means none.
	Resync func()
	// Registerer receives tpe_subscription_expiry_seconds and
	// tpe_subscription_renewals_total{outcome}; nil registers nothing.
	Registerer prometheus.Registerer
}

// Keeper keeps our Graph subscriptions alive: it creates missing ones, renews them before
// they expire and answers lifecycle notifications. At most one renewal or reauthorization
// of a subscription runs at a time in the process.
type Keeper struct {
	api       subscriptionAPI
	o         KeeperOptions
	resources []string // normalised
	log       *slog.Logger
	renewals  *prometheus.CounterVec

	ensureMu sync.Mutex // serialises list-create-adopt

	mu      sync.Mutex
	subs    map[string]Subscription // ours, by id
	flights map[string]*subFlight
	retry   map[string]subRetry
}

type subFlight struct {
	done    chan struct{}
	err     error
	waiters int
}

type subRetry struct {
	attempts int
	at       time.Time
}

// Audit actions of the keeper.
const (
	auditSubscriptionReauthorize = "subscription_reauthorize"
	auditSubscriptionRecreate    = "subscription_recreate"
	auditResyncTriggered         = "resync_triggered"
)

// NewKeeper checks the options and returns a keeper; it makes no call to Graph.
func NewKeeper(api subscriptionAPI, o KeeperOptions) (*Keeper, error) {
	o.ChangeType = cmp.Or(o.ChangeType, DefaultSubscriptionChangeType)
	o.LifecycleNotificationURL = cmp.Or(o.LifecycleNotificationURL, o.NotificationURL)
	o.MaxLifetime = cmp.Or(o.MaxLifetime, DefaultSubscriptionLifetime)
	o.RenewWhenRemaining = cmp.Or(o.RenewWhenRemaining, 0.25)
	o.Recheck = cmp.Or(o.Recheck, time.Hour)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Backoff == nil {
		o.Backoff = subscriptionBackoff
	}
	switch {
	case len(o.Resources) == 0:
		return nil, errors.New("subscription keeper: no resources to subscribe to")
	case o.NotificationURL == "":
		return nil, errors.New("subscription keeper: no notification URL (set the Event Grid target or the webhook URL)")
	case o.MaxLifetime < 0 || o.MaxLifetime > MaxSubscriptionLifetime:
		return nil, fmt.Errorf("subscription keeper: lifetime %s is beyond Graph's %s", o.MaxLifetime, MaxSubscriptionLifetime)
	case o.RenewWhenRemaining <= 0 || o.RenewWhenRemaining >= 1:
		return nil, fmt.Errorf("subscription keeper: RenewWhenRemaining %v must be between 0 and 1", o.RenewWhenRemaining)
	}
	k := &Keeper{
		api: api, o: o, log: cmp.Or(o.Logger, slog.New(slog.DiscardHandler)),
		subs: map[string]Subscription{}, flights: map[string]*subFlight{}, retry: map[string]subRetry{},
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tpe_subscription_renewals_total",
			Help: "Graph subscription renewals by outcome (success, failure).",
		}, []string{"outcome"}),
	}
	for _, r := range o.Resources {
		k.resources = append(k.resources, normResource(r))
	}
	k.renewals.WithLabelValues("success")
	k.renewals.WithLabelValues("failure")
	if o.Registerer != nil {
		expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tpe_subscription_expiry_seconds",
			Help: "Seconds until the nearest of our Graph subscriptions expires (0 when there is none).",
		}, k.secondsToNearestExpiry)
		for _, c := range []prometheus.Collector{expiry, k.renewals} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("subscription keeper metrics: %w", err)
			}
		}
	}
	return k, nil
}

// subscriptionBackoff doubles from 30 s up to 30 min and keeps a random half of it.
func subscriptionBackoff(attempt int) time.Duration {
	d := min(30*time.Second<<min(max(attempt-1, 0), 6), 30*time.Minute)
	return d/2 + rand.N(d/2+1)
}

// ours reports whether s is one of the subscriptions this keeper manages.
func (k *Keeper) ours(s Subscription) bool {
	return strings.EqualFold(s.NotificationURL, k.o.NotificationURL) &&
		slices.Contains(k.resources, normResource(s.Resource))
}

// stale reports whether s holds what Graph keys subscriptions by — resource and changeType —
// for one of our resources while pointing elsewhere: this application's subscription from
// before a notification URL change (webhook to Event Grid, a renamed partner topic). Graph
// answers 409 to creating ours while it exists, so it is replaced. Graph lists only this
// application's subscriptions.
func (k *Keeper) stale(s Subscription) bool {
	return !strings.EqualFold(s.NotificationURL, k.o.NotificationURL) &&
		slices.Contains(k.resources, normResource(s.Resource)) &&
		changeTypeSet(s.ChangeType) == changeTypeSet(k.o.ChangeType)
}

// changeTypeSet returns the change types lower-cased, sorted and comma-joined.
func changeTypeSet(ct string) string {
	parts := strings.Split(strings.ToLower(ct), ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Ensure makes sure each resource has a subscription of ours: it lists, adopts what is
// there, creates what is missing (a 409 means another replica was faster: list again and
// adopt) and renews those near expiry. It is idempotent and returns our subscriptions. A
// subscription of ours that vanished since the last look (removed or expired in Graph) is
// recreated with an audit record and a resync, since notifications were lost meanwhile; so
// is one for the same resource and changeType that points to a former notification URL
// (replaced: deleted, then created with ours).
func (k *Keeper) Ensure(ctx context.Context) ([]Subscription, error) {
	subs, recreated, err := k.ensure(ctx)
	for _, r := range recreated {
		k.audit(ctx, auditSubscriptionRecreate, r.now, slog.String(logkey.PreviousSubscriptionID, r.old.ID),
			slog.String(logkey.How, r.how))
	}
	if len(recreated) > 0 {
		k.resync(ctx, recreated[0].now, "subscription "+recreated[0].how)
	}
	return subs, err
}

// How a subscription came to be recreated.
const (
	howVanished = "vanished"
	howReplaced = "replaced"
)

// subRecreation is a subscription of ours that was gone, or pointed to a former
// notification URL, and has been created again.
type subRecreation struct {
	old, now Subscription
	how      string // howVanished or howReplaced
}

func (k *Keeper) ensure(ctx context.Context) ([]Subscription, []subRecreation, error) {
	k.ensureMu.Lock()
	defer k.ensureMu.Unlock()
	before := k.snapshot()
	owned, stale, err := k.listOwned(ctx)
	if err != nil {
		return nil, nil, err
	}
	k.replace(owned)
	var errs []error
	var recreated []subRecreation
	for _, res := range k.resources {
		switch n := countResource(owned, res); {
		case n > 1:
			k.log.WarnContext(ctx, "several subscriptions for one resource; renewing all", logkey.Resource, res)
		case n == 0:
			if old, ok := forResource(stale, res); ok {
				s, err := k.replaceStale(ctx, old, res)
				if err != nil {
					errs = append(errs, err)
				} else {
					recreated = append(recreated, subRecreation{old: old, now: s, how: howReplaced})
				}
				continue
			}
			s, replaced, err := k.create(ctx, res)
			switch {
			case err != nil:
				errs = append(errs, err)
			case replaced.ID != "":
				recreated = append(recreated, subRecreation{old: replaced, now: s, how: howReplaced})
			default:
				if old, ok := forResource(before, res); ok {
					recreated = append(recreated, subRecreation{old: old, now: s, how: howVanished})
				}
			}
		}
	}
	for _, s := range k.snapshot() {
		if err := k.renewIfDue(ctx, s.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return k.snapshot(), recreated, errors.Join(errs...)
}

// forResource returns the first of subs for resource res.
func forResource(subs []Subscription, res string) (Subscription, bool) {
	i := slices.IndexFunc(subs, func(s Subscription) bool { return normResource(s.Resource) == res })
	if i < 0 {
		return Subscription{}, false
	}
	return subs[i], true
}

func countResource(subs []Subscription, res string) int {
	n := 0
	for _, s := range subs {
		if normResource(s.Resource) == res {
			n++
		}
	}
	return n
}

// List returns our subscriptions as Graph has them now.
func (k *Keeper) List(ctx context.Context) ([]Subscription, error) {
	k.ensureMu.Lock()
	defer k.ensureMu.Unlock()
	owned, _, err := k.listOwned(ctx)
	if err != nil {
		return nil, err
	}
	k.replace(owned)
	return owned, nil
}

// Delete removes all our subscriptions (one already gone counts as removed).
func (k *Keeper) Delete(ctx context.Context) error {
	k.ensureMu.Lock()
	defer k.ensureMu.Unlock()
	owned, _, err := k.listOwned(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range owned {
		if err := k.api.DeleteSubscription(ctx, s.ID); err != nil && !worker.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete subscription %s: %w", s.ID, k.redact(err)))
			continue
		}
		k.log.InfoContext(ctx, "subscription deleted", logkey.SubscriptionID, s.ID, logkey.Resource, s.Resource)
	}
	k.replace(nil)
	return errors.Join(errs...)
}

// listOwned lists Graph's subscriptions and returns ours and the stale ones (see stale).
func (k *Keeper) listOwned(ctx context.Context) (owned, stale []Subscription, err error) {
	all, err := k.api.ListSubscriptions(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list subscriptions: %w", k.redact(err))
	}
	for _, s := range all {
		switch {
		case k.ours(s):
			owned = append(owned, s)
		case k.stale(s):
			stale = append(stale, s)
		}
	}
	sortSubscriptions(owned)
	sortSubscriptions(stale)
	return owned, stale, nil
}

// create subscribes to res. On a 409 it lists again and adopts ours (another replica was
// faster) or replaces the stale one Graph keyed the conflict on; replaced is that one.
func (k *Keeper) create(ctx context.Context, res string) (s, replaced Subscription, err error) {
	s, err = k.createNew(ctx, res)
	if err == nil || !isConflict(err) {
		return s, Subscription{}, err
	}
	owned, stale, lerr := k.listOwned(ctx)
	if lerr != nil {
		return Subscription{}, Subscription{}, fmt.Errorf("create subscription for %s: conflict, then %w", res, lerr)
	}
	if s, ok := forResource(owned, res); ok {
		k.put(s)
		k.log.InfoContext(ctx, "subscription adopted", logkey.SubscriptionID, s.ID, logkey.Resource, res)
		return s, Subscription{}, nil
	}
	if old, ok := forResource(stale, res); ok {
		s, err := k.replaceStale(ctx, old, res)
		return s, old, err
	}
	return Subscription{}, Subscription{}, fmt.Errorf("create subscription for %s: Graph says it exists but does not list it", res)
}

// createNew asks Graph for our subscription to res; a 409 is returned as it is.
func (k *Keeper) createNew(ctx context.Context, res string) (Subscription, error) {
	spec := SubscriptionSpec{
		Resource: res, ChangeType: k.o.ChangeType, ClientState: k.o.ClientState,
		NotificationURL: k.o.NotificationURL, LifecycleNotificationURL: k.o.LifecycleNotificationURL,
		ExpirationDateTime: k.o.Now().Add(k.o.MaxLifetime),
	}
	s, err := k.api.CreateSubscription(ctx, spec)
	if err != nil {
		return Subscription{}, fmt.Errorf("create subscription for %s: %w", res, k.redact(err))
	}
	s.Resource = cmp.Or(s.Resource, res)
	s.NotificationURL = cmp.Or(s.NotificationURL, spec.NotificationURL)
	s.ExpirationDateTime = cmp.Or(s.ExpirationDateTime, spec.ExpirationDateTime)
	k.put(s)
	k.log.InfoContext(ctx, "subscription created", logkey.SubscriptionID, s.ID, logkey.Resource, res, logkey.Expires, s.ExpirationDateTime)
	return s, nil
}

// replaceStale deletes old (ours, pointing to a former notification URL; one already gone
// is fine) and creates ours for res in its place. Between the two, notifications for res go
// nowhere: the caller audits the replacement and asks for a resync.
func (k *Keeper) replaceStale(ctx context.Context, old Subscription, res string) (Subscription, error) {
	k.log.WarnContext(ctx, "subscription points to another notification URL; replacing it",
		logkey.SubscriptionID, old.ID, logkey.Resource, res, "old_notification_url", old.NotificationURL)
	if err := k.api.DeleteSubscription(ctx, old.ID); err != nil && !worker.IsNotFound(err) {
		return Subscription{}, fmt.Errorf("replace subscription %s for %s: delete: %w", old.ID, res, k.redact(err))
	}
	s, err := k.createNew(ctx, res)
	if err != nil {
		return Subscription{}, fmt.Errorf("replace subscription %s for %s: %w", old.ID, res, err)
	}
	return s, nil
}

// redact returns err with the client state cut from its text, in case a collaborator
// echoed the request; errors.As still sees err's behaviour (NotFound, Temporary, ...).
func (k *Keeper) redact(err error) error {
	return &redactedError{text: worker.RedactSecret(err.Error(), k.o.ClientState), err: err}
}

type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// State of our subscriptions.

func (k *Keeper) replace(owned []Subscription) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.subs = make(map[string]Subscription, len(owned))
	for _, s := range owned {
		k.subs[s.ID] = s
	}
	for id := range k.retry {
		if _, ok := k.subs[id]; !ok {
			delete(k.retry, id)
		}
	}
}

func (k *Keeper) put(s Subscription) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.subs[s.ID] = s
}

func (k *Keeper) snapshot() []Subscription {
	k.mu.Lock()
	out := make([]Subscription, 0, len(k.subs))
	for _, s := range k.subs {
		out = append(out, s)
	}
	k.mu.Unlock()
	sortSubscriptions(out)
	return out
}

// secondsToNearestExpiry feeds tpe_subscription_expiry_seconds.
func (k *Keeper) secondsToNearestExpiry() float64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	var nearest time.Time
	for _, s := range k.subs {
		if nearest.IsZero() || s.ExpirationDateTime.Before(nearest) {
			nearest = s.ExpirationDateTime
		}
	}
	if nearest.IsZero() {
		return 0
	}
	return nearest.Sub(k.o.Now()).Seconds()
}
