package subscriptions

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

var _ worker.LifecycleHandler = (*Keeper)(nil)

// HandleLifecycle answers a lifecycle notification for one of our subscriptions:
// reauthorizationRequired reauthorizes it (or renews it when Graph refuses the
// reauthorization) and asks for a resync; subscriptionRemoved recreates it and asks for a
// resync; missed asks for a resync. Unknown events and subscriptions that are not ours are
// logged and ignored. An error means the event should be retried.
func (k *Keeper) HandleLifecycle(ctx context.Context, ev worker.LifecycleEvent) error {
	event := strings.ToLower(ev.Event)
	switch event {
	case "reauthorizationrequired", "subscriptionremoved", "missed":
	default:
		k.log.WarnContext(ctx, "unknown lifecycle event ignored", logkey.LifecycleEvent, ev.Event, logkey.SubscriptionID, ev.SubscriptionID)
		return nil
	}
	s, ok, err := k.lookup(ctx, ev.SubscriptionID)
	if err != nil {
		return err
	}
	if !ok {
		k.log.InfoContext(ctx, "lifecycle event for a subscription that is not ours ignored",
			logkey.LifecycleEvent, ev.Event, logkey.SubscriptionID, ev.SubscriptionID)
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
		k.log.InfoContext(ctx, "reauthorization refused; renewing instead", logkey.SubscriptionID, s.ID, logkey.Error, k.redact(err).Error())
		how = "renewed"
		return k.renew(ctx, s.ID)
	})
	if joined {
		how = "joined_renewal"
	}
	if worker.IsNotFound(err) {
		return k.recreate(ctx, s, "reauthorizationRequired for a subscription that is gone")
	}
	if err != nil {
		return fmt.Errorf("reauthorize subscription %s: %w", s.ID, k.redact(err))
	}
	k.audit(ctx, auditSubscriptionReauthorize, s, slog.String(logkey.How, how))
	k.resync(ctx, s, "reauthorizationRequired")
	return nil
}

// reauthorizeRefused reports whether Graph refused a reauthorization for good (404, 400 and
// other permanent answers), in which case a renewal is the documented alternative.
func reauthorizeRefused(err error) bool {
	return worker.IsNotFound(err) || !(worker.IsTemporary(err) || worker.IsSystemic(err))
}

// recreate answers the removal of subscription old: it ensures (creating old's resource
// again if Graph no longer lists it) and asks for a resync, since notifications were lost.
func (k *Keeper) recreate(ctx context.Context, old Subscription, why string) error {
	_, recreated, err := k.ensure(ctx)
	for _, r := range recreated {
		k.audit(ctx, auditSubscriptionRecreate, r.now, slog.String(logkey.PreviousSubscriptionID, r.old.ID), slog.String(logkey.How, why))
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
		k.log.DebugContext(ctx, "resync wanted but none configured", logkey.SubscriptionID, s.ID, logkey.How, why)
		return
	}
	k.o.Resync()
	k.audit(ctx, auditResyncTriggered, s, slog.String(logkey.How, why))
}

// audit writes one audit record about subscription s.
func (k *Keeper) audit(ctx context.Context, action string, s Subscription, attrs ...slog.Attr) {
	attrs = append([]slog.Attr{slog.String(logkey.Action, action), slog.String(logkey.SubscriptionID, s.ID),
		slog.String(logkey.Resource, s.Resource)}, attrs...)
	k.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}
