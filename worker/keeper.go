package worker

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

// eventGridKeys are the keys of a Graph partner-topic target, in the order Graph shows them.
var eventGridKeys = []string{"azuresubscriptionid", "resourcegroup", "partnertopic", "location"}

// EventGridURL turns the configured partner-topic target
// "azuresubscriptionid=...&resourcegroup=...&partnertopic=...&location=..." (keys in any
// order and letter case, an "EventGrid:?" prefix tolerated) into the notificationUrl Graph
// expects. All four keys are required; an unknown key is an error.
func EventGridURL(spec string) (string, error) {
	rest := strings.TrimSpace(spec)
	if p, ok := cutPrefixFold(rest, "EventGrid:?"); ok {
		rest = p
	}
	got := map[string]string{}
	for part := range strings.SplitSeq(rest, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !slices.Contains(eventGridKeys, k) {
			return "", fmt.Errorf("event grid target: unknown key %q (want %s)", k, strings.Join(eventGridKeys, ", "))
		}
		if _, dup := got[k]; dup {
			return "", fmt.Errorf("event grid target: key %s given twice", k)
		}
		got[k] = strings.TrimSpace(v)
	}
	parts := make([]string, 0, len(eventGridKeys))
	for _, k := range eventGridKeys {
		v := got[k]
		if v == "" {
			return "", fmt.Errorf("event grid target: missing %s (want %s=...)", k, k)
		}
		if strings.ContainsAny(v, " ?#%=&/\\\"'<>") {
			return "", fmt.Errorf("event grid target: %s has characters Azure names do not use", k)
		}
		parts = append(parts, k+"="+v)
	}
	if !isObjectID(got["azuresubscriptionid"]) {
		return "", errors.New("event grid target: azuresubscriptionid must be the Azure subscription id (a GUID)")
	}
	return "EventGrid:?" + strings.Join(parts, "&"), nil
}

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
	// Logger; nil means slog.Default().
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

// Audit actions and log keys of the keeper.
const (
	auditSubscriptionReauthorize = "subscription_reauthorize"
	auditSubscriptionRecreate    = "subscription_recreate"
	auditResyncTriggered         = "resync_triggered"

	subKeyAction     = "action"
	subKeyID         = "subscription_id"
	subKeyResource   = "resource"
	subKeyExpiry     = "expires"
	subKeyEvent      = "lifecycle_event"
	subKeyHow        = "how"
	subKeyError      = "error"
	subKeyRetryIn    = "retry_in"
	subKeyAttempt    = "attempt"
	subKeyPreviousID = "previous_subscription_id"
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
		api: api, o: o, log: cmp.Or(o.Logger, slog.Default()),
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

func normResource(r string) string { return strings.ToLower(strings.Trim(strings.TrimSpace(r), "/")) }

// ours reports whether s is one of the subscriptions this keeper manages.
func (k *Keeper) ours(s Subscription) bool {
	return strings.EqualFold(s.NotificationURL, k.o.NotificationURL) &&
		slices.Contains(k.resources, normResource(s.Resource))
}

// Ensure makes sure each resource has a subscription of ours: it lists, adopts what is
// there, creates what is missing (a 409 means another replica was faster: list again and
// adopt) and renews those near expiry. It is idempotent and returns our subscriptions. A
// subscription of ours that vanished since the last look (removed or expired in Graph) is
// recreated with an audit record and a resync, since notifications were lost meanwhile.
func (k *Keeper) Ensure(ctx context.Context) ([]Subscription, error) {
	subs, recreated, err := k.ensure(ctx)
	for _, r := range recreated {
		k.audit(ctx, auditSubscriptionRecreate, r.now, slog.String(subKeyPreviousID, r.old.ID),
			slog.String(subKeyHow, "vanished"))
	}
	if len(recreated) > 0 {
		k.resync(ctx, recreated[0].now, "subscription vanished")
	}
	return subs, err
}

// subRecreation is a subscription of ours that was gone and has been created again.
type subRecreation struct{ old, now Subscription }

func (k *Keeper) ensure(ctx context.Context) ([]Subscription, []subRecreation, error) {
	k.ensureMu.Lock()
	defer k.ensureMu.Unlock()
	before := k.snapshot()
	owned, err := k.listOwned(ctx)
	if err != nil {
		return nil, nil, err
	}
	k.replace(owned)
	var errs []error
	var recreated []subRecreation
	for _, res := range k.resources {
		switch n := countResource(owned, res); {
		case n > 1:
			k.log.WarnContext(ctx, "several subscriptions for one resource; renewing all", subKeyResource, res)
		case n == 0:
			s, err := k.create(ctx, res)
			if err != nil {
				errs = append(errs, err)
			} else if i := slices.IndexFunc(before, func(b Subscription) bool { return normResource(b.Resource) == res }); i >= 0 {
				recreated = append(recreated, subRecreation{old: before[i], now: s})
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
	owned, err := k.listOwned(ctx)
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
	owned, err := k.listOwned(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range owned {
		if err := k.api.DeleteSubscription(ctx, s.ID); err != nil && !IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete subscription %s: %w", s.ID, k.redact(err)))
			continue
		}
		k.log.InfoContext(ctx, "subscription deleted", subKeyID, s.ID, subKeyResource, s.Resource)
	}
	k.replace(nil)
	return errors.Join(errs...)
}

func (k *Keeper) listOwned(ctx context.Context) ([]Subscription, error) {
	all, err := k.api.ListSubscriptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", k.redact(err))
	}
	var owned []Subscription
	for _, s := range all {
		if k.ours(s) {
			owned = append(owned, s)
		}
	}
	sortSubscriptions(owned)
	return owned, nil
}

// create subscribes to res, adopting the existing subscription on a 409.
func (k *Keeper) create(ctx context.Context, res string) (Subscription, error) {
	spec := SubscriptionSpec{
		Resource: res, ChangeType: k.o.ChangeType, ClientState: k.o.ClientState,
		NotificationURL: k.o.NotificationURL, LifecycleNotificationURL: k.o.LifecycleNotificationURL,
		ExpirationDateTime: k.o.Now().Add(k.o.MaxLifetime),
	}
	s, err := k.api.CreateSubscription(ctx, spec)
	if err == nil {
		s.Resource = cmp.Or(s.Resource, res)
		s.NotificationURL = cmp.Or(s.NotificationURL, spec.NotificationURL)
		s.ExpirationDateTime = cmp.Or(s.ExpirationDateTime, spec.ExpirationDateTime)
		k.put(s)
		k.log.InfoContext(ctx, "subscription created", subKeyID, s.ID, subKeyResource, res, subKeyExpiry, s.ExpirationDateTime)
		return s, nil
	}
	if !isConflict(err) {
		return Subscription{}, fmt.Errorf("create subscription for %s: %w", res, k.redact(err))
	}
	owned, lerr := k.listOwned(ctx)
	if lerr != nil {
		return Subscription{}, fmt.Errorf("create subscription for %s: conflict, then %w", res, lerr)
	}
	for _, s := range owned {
		if normResource(s.Resource) == res {
			k.put(s)
			k.log.InfoContext(ctx, "subscription adopted", subKeyID, s.ID, subKeyResource, res)
			return s, nil
		}
	}
	return Subscription{}, fmt.Errorf("create subscription for %s: Graph says it exists but does not list it", res)
}

// redact returns err with the client state cut from its text, in case a collaborator
// echoed the request; errors.As still sees err's behaviour (NotFound, Temporary, ...).
func (k *Keeper) redact(err error) error {
	return &redactedError{text: redactSecret(err.Error(), k.o.ClientState), err: err}
}

type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// Renewal and lifecycle handling.

// Run keeps the subscriptions alive until ctx ends, then returns nil. It ensures them at
// start and every Recheck, and renews each one when less than RenewWhenRemaining of
// MaxLifetime is left. Failures are logged and retried with backoff.
func (k *Keeper) Run(ctx context.Context) error {
	var failures int
	var nextEnsure time.Time
	for ctx.Err() == nil {
		if now := k.o.Now(); !now.Before(nextEnsure) {
			nextEnsure = now.Add(k.o.Recheck)
			if _, err := k.Ensure(ctx); err != nil && ctx.Err() == nil {
				failures++
				wait := k.backoff(failures, err)
				nextEnsure = now.Add(wait)
				k.log.WarnContext(ctx, "ensuring subscriptions failed; will retry", subKeyError, err.Error(),
					subKeyAttempt, failures, subKeyRetryIn, wait)
			} else if err == nil {
				failures = 0
			}
		}
		next, gone := k.renewDue(ctx)
		if gone {
			nextEnsure = k.o.Now() // recreate it now
		}
		next = earlier(next, nextEnsure)
		select {
		case <-ctx.Done():
		case <-k.o.After(max(next.Sub(k.o.Now()), 0)):
		}
	}
	return nil
}

// renewDue renews every subscription that is due and returns when the next one will be,
// and whether Graph no longer has one of them.
func (k *Keeper) renewDue(ctx context.Context) (next time.Time, gone bool) {
	for _, s := range k.snapshot() {
		err := k.renewIfDue(ctx, s.ID)
		switch {
		case err == nil || ctx.Err() != nil:
		case IsNotFound(err):
			gone = true
			k.log.WarnContext(ctx, "subscription gone from Graph; recreating", subKeyID, s.ID, subKeyResource, s.Resource)
		default:
			k.mu.Lock()
			r := k.retry[s.ID]
			k.mu.Unlock()
			k.log.WarnContext(ctx, "renewing a subscription failed; will retry", subKeyID, s.ID,
				subKeyResource, s.Resource, subKeyError, err.Error(), subKeyAttempt, r.attempts, subKeyRetryIn, r.at.Sub(k.o.Now()))
		}
	}
	next = k.o.Now().Add(k.o.Recheck)
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, s := range k.subs {
		next = earlier(next, later(k.dueAt(s), k.retry[id].at))
	}
	return next, gone
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// dueAt is when s should be renewed.
func (k *Keeper) dueAt(s Subscription) time.Time {
	return s.ExpirationDateTime.Add(-time.Duration(float64(k.o.MaxLifetime) * k.o.RenewWhenRemaining))
}

func (k *Keeper) backoff(attempt int, err error) time.Duration {
	return max(k.o.Backoff(attempt), RetryAfterOf(err))
}

// renewIfDue renews subscription id when it is due and not waiting out a backoff. A failure
// schedules the next attempt.
func (k *Keeper) renewIfDue(ctx context.Context, id string) error {
	now := k.o.Now()
	k.mu.Lock()
	s, ok := k.subs[id]
	r := k.retry[id]
	k.mu.Unlock()
	if !ok || now.Before(k.dueAt(s)) || now.Before(r.at) {
		return nil
	}
	_, err := k.exclusive(ctx, id, func() error {
		k.mu.Lock()
		s, ok = k.subs[id]
		k.mu.Unlock()
		if !ok || k.o.Now().Before(k.dueAt(s)) {
			return nil // renewed (or dropped) while we waited
		}
		return k.renew(ctx, id)
	})
	if err != nil && ctx.Err() == nil {
		k.mu.Lock()
		r.attempts++
		r.at = now.Add(k.backoff(r.attempts, err))
		k.retry[id] = r
		k.mu.Unlock()
	}
	return err
}

// renew sets id's expiry MaxLifetime ahead. Call it inside exclusive.
func (k *Keeper) renew(ctx context.Context, id string) error {
	exp := k.o.Now().Add(k.o.MaxLifetime)
	got, err := k.api.RenewSubscription(ctx, id, exp)
	if err != nil {
		k.renewals.WithLabelValues("failure").Inc()
		return fmt.Errorf("renew subscription %s: %w", id, k.redact(err))
	}
	k.renewals.WithLabelValues("success").Inc()
	k.mu.Lock()
	s := k.subs[id]
	s.ID = id
	s.ExpirationDateTime = cmp.Or(got.ExpirationDateTime, exp)
	k.subs[id] = s
	delete(k.retry, id)
	k.mu.Unlock()
	k.log.InfoContext(ctx, "subscription renewed", subKeyID, id, subKeyResource, s.Resource, subKeyExpiry, s.ExpirationDateTime)
	return nil
}

// exclusive runs fn unless a renewal or reauthorization of the same subscription is
// already running; then it waits for that one and returns its error with joined true.
func (k *Keeper) exclusive(ctx context.Context, id string, fn func() error) (joined bool, err error) {
	k.mu.Lock()
	if f, ok := k.flights[id]; ok {
		f.waiters++
		k.mu.Unlock()
		select {
		case <-f.done:
			return true, f.err
		case <-ctx.Done():
			return true, context.Cause(ctx)
		}
	}
	f := &subFlight{done: make(chan struct{})}
	k.flights[id] = f
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		delete(k.flights, id)
		k.mu.Unlock()
		close(f.done)
	}()
	f.err = fn()
	return false, f.err
}

// HandleLifecycle answers a lifecycle notification for one of our subscriptions:
// reauthorizationRequired reauthorizes it (or renews it when Graph refuses the
// reauthorization) and asks for a resync; subscriptionRemoved recreates it and asks for a
// resync; missed asks for a resync. Unknown events and subscriptions that are not ours are
// logged and ignored. An error means the event should be retried.
func (k *Keeper) HandleLifecycle(ctx context.Context, ev LifecycleEvent) error {
	event := strings.ToLower(ev.Event)
	switch event {
	case "reauthorizationrequired", "subscriptionremoved", "missed":
	default:
		k.log.WarnContext(ctx, "unknown lifecycle event ignored", subKeyEvent, ev.Event, subKeyID, ev.SubscriptionID)
		return nil
	}
	s, ok, err := k.lookup(ctx, ev.SubscriptionID)
	if err != nil {
		return err
	}
	if !ok {
		k.log.InfoContext(ctx, "lifecycle event for a subscription that is not ours ignored",
			subKeyEvent, ev.Event, subKeyID, ev.SubscriptionID)
		return nil
	}
	switch event {
	case "reauthorizationrequired":
		return k.reauthorize(ctx, s)
	case "subscriptionremoved":
		return k.recreate(ctx, s, ev.Event)
	}
	k.resync(ctx, s, ev.Event)
	return nil
}

// lookup finds one of our subscriptions by id, listing again when it is not known yet
// (another replica may have recreated it).
func (k *Keeper) lookup(ctx context.Context, id string) (Subscription, bool, error) {
	k.mu.Lock()
	s, ok := k.subs[id]
	k.mu.Unlock()
	if ok {
		return s, true, nil
	}
	owned, err := k.List(ctx)
	if err != nil {
		return Subscription{}, false, err
	}
	for _, s := range owned {
		if s.ID == id {
			return s, true, nil
		}
	}
	return Subscription{}, false, nil
}

// reauthorize answers reauthorizationRequired. A renewal running at the same time answers
// it too (a renewal reauthorizes), so it is joined rather than repeated.
func (k *Keeper) reauthorize(ctx context.Context, s Subscription) error {
	how := "reauthorized"
	joined, err := k.exclusive(ctx, s.ID, func() error {
		err := k.api.ReauthorizeSubscription(ctx, s.ID)
		if err == nil || !reauthorizeRefused(err) {
			return err
		}
		k.log.InfoContext(ctx, "reauthorization refused; renewing instead", subKeyID, s.ID, subKeyError, k.redact(err).Error())
		how = "renewed"
		return k.renew(ctx, s.ID)
	})
	if joined {
		how = "joined_renewal"
	}
	if IsNotFound(err) {
		return k.recreate(ctx, s, "reauthorizationRequired for a subscription that is gone")
	}
	if err != nil {
		return fmt.Errorf("reauthorize subscription %s: %w", s.ID, k.redact(err))
	}
	k.audit(ctx, auditSubscriptionReauthorize, s, slog.String(subKeyHow, how))
	k.resync(ctx, s, "reauthorizationRequired")
	return nil
}

// reauthorizeRefused reports whether Graph refused a reauthorization for good (404, 400 and
// other permanent answers), in which case a renewal is the documented alternative.
func reauthorizeRefused(err error) bool {
	return IsNotFound(err) || !(IsTemporary(err) || IsSystemic(err))
}

// recreate answers the removal of subscription old: it ensures (creating old's resource
// again if Graph no longer lists it) and asks for a resync, since notifications were lost.
func (k *Keeper) recreate(ctx context.Context, old Subscription, why string) error {
	_, recreated, err := k.ensure(ctx)
	for _, r := range recreated {
		k.audit(ctx, auditSubscriptionRecreate, r.now, slog.String(subKeyPreviousID, r.old.ID), slog.String(subKeyHow, why))
	}
	if err != nil {
		return err
	}
	if len(recreated) > 0 {
		old = recreated[0].now
	}
	k.resync(ctx, old, why)
	return nil
}

func (k *Keeper) resync(ctx context.Context, s Subscription, why string) {
	if k.o.Resync == nil {
		k.log.DebugContext(ctx, "resync wanted but none configured", subKeyID, s.ID, subKeyHow, why)
		return
	}
	k.o.Resync()
	k.audit(ctx, auditResyncTriggered, s, slog.String(subKeyHow, why))
}

// audit writes one audit record about subscription s.
func (k *Keeper) audit(ctx context.Context, action string, s Subscription, attrs ...slog.Attr) {
	attrs = append([]slog.Attr{slog.String(subKeyAction, action), slog.String(subKeyID, s.ID),
		slog.String(subKeyResource, s.Resource)}, attrs...)
	k.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

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

func sortSubscriptions(subs []Subscription) {
	slices.SortFunc(subs, func(a, b Subscription) int {
		return cmp.Or(cmp.Compare(normResource(a.Resource), normResource(b.Resource)), cmp.Compare(a.ID, b.ID))
	})
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
