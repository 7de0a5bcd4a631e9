package subscriptions

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

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
				k.log.WarnContext(ctx, "ensuring subscriptions failed; will retry", logkey.Error, err.Error(),
					logkey.Attempt, failures, logkey.RetryIn, wait)
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
		case worker.IsNotFound(err):
			gone = true
			k.log.WarnContext(ctx, "subscription gone from Graph; recreating", logkey.SubscriptionID, s.ID, logkey.Resource, s.Resource)
		default:
			k.mu.Lock()
			r := k.retry[s.ID]
			k.mu.Unlock()
			k.log.WarnContext(ctx, "renewing a subscription failed; will retry", logkey.SubscriptionID, s.ID,
				logkey.Resource, s.Resource, logkey.Error, err.Error(), logkey.Attempt, r.attempts, logkey.RetryIn, r.at.Sub(k.o.Now()))
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
	return max(k.o.Backoff(attempt), worker.RetryAfterOf(err))
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
	k.log.InfoContext(ctx, "subscription renewed", logkey.SubscriptionID, id, logkey.Resource, s.Resource, logkey.Expires, s.ExpirationDateTime)
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
