package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
)

// This file is what each of the worker's goroutines does with one message: keep its lock,
// decode it, reconcile every principal it names (serialized per principal by keyed), and
// hand a settlement to settle.

// handle works one message and settles it. The message's lock is renewed meanwhile.
func (w *Worker) handle(work context.Context, d *Delivery) {
	log := w.log.With(slog.String(logkey.MessageID, d.MessageID), slog.Uint64(logkey.DeliveryCount, uint64(d.DeliveryCount)))
	stopRenewing := w.keepLocked(work, d, log)
	v := w.work(work, d, log)
	v = w.holdWhileSystemic(work, d, v, log) // circuit.go
	stopRenewing()
	w.settle(work, d, v, log)
}

// work decides the message's settlement: decode, then every lifecycle event, group and
// principal, each failure classified into the tally.
func (w *Worker) work(work context.Context, d *Delivery, log *slog.Logger) settlement {
	// A message received as the circuit opened waits, under its renewed lock, instead of
	// failing on a fault that is not its own.
	if err := w.circuit.waitClosed(work); err != nil {
		return settlement{outcome: OutcomeAbandoned, reason: "shutdown", err: context.Cause(work)}
	}
	return w.attempt(work, d, log)
}

// attempt works the message once, circuit open or not.
func (w *Worker) attempt(work context.Context, d *Delivery, log *slog.Logger) settlement {
	ctx, cancel := context.WithTimeoutCause(work, w.opts.MessageTimeout, errMessageTimeout)
	defer cancel()

	dec, err := Decode(d.Body, d.Properties, w.opts.Trust)
	if err != nil {
		var pe *PermanentError
		if errors.As(err, &pe) {
			return settlement{outcome: OutcomeDeadLettered, reason: pe.Reason, description: pe.Description, err: err}
		}
		w.metrics.unclassified.Inc()
		return settlement{outcome: OutcomeAbandoned, reason: "unclassified", err: fmt.Errorf("decode: %w", err)}
	}
	if dec.Probe {
		log.Info("probe or validation message; nothing to do")
		return settlement{outcome: OutcomeCompleted}
	}
	t := &tally{w: w, rejected: dec.Rejected}
	w.lifecycle(ctx, dec.Lifecycle, t, log)
	for _, tg := range w.targets(ctx, d, dec, t, log) {
		if t.systemic != nil {
			break // the rest would hit the same fault
		}
		w.reconcile(ctx, d, tg, t, log)
	}
	return t.settlement()
}

// lifecycle hands each lifecycle event to the handler, or logs it when there is none.
func (w *Worker) lifecycle(ctx context.Context, events []LifecycleEvent, t *tally, log *slog.Logger) {
	for _, ev := range events {
		attrs := []any{slog.String(logkey.SubscriptionID, ev.SubscriptionID), slog.String(logkey.LifecycleEvent, ev.Event)}
		if w.opts.Lifecycle == nil {
			log.Warn("subscription lifecycle event; no handler configured", attrs...)
			t.acted++
			continue
		}
		if err := w.opts.Lifecycle.HandleLifecycle(ctx, ev); err != nil {
			t.add(fmt.Errorf("lifecycle %s of subscription %s: %w", ev.Event, ev.SubscriptionID, err))
			continue
		}
		log.Info("subscription lifecycle event handled", attrs...)
		t.acted++
	}
}

// targets returns the message's principals followed by the members of its groups that are
// reconciled here (groupTargets), deduplicated.
func (w *Worker) targets(ctx context.Context, d *Delivery, dec Decoded, t *tally, log *slog.Logger) []Target {
	seen := map[string]bool{}
	var out []Target
	add := func(tg Target) {
		k := targetKey(tg) + "|" + targetVariant(tg)
		if !seen[k] {
			seen[k] = true
			out = append(out, tg)
		}
	}
	for _, tg := range dec.Principals {
		add(tg)
	}
	for _, g := range dec.Groups {
		for _, tg := range w.groupTargets(ctx, d, g, t, log) {
			add(tg)
		}
	}
	return out
}

// groupTargets lists the transitive members of a group named without members@delta and
// returns those to reconcile in this message: all of them, unless Options.FanOut is set and
// the group has more than FanOutAbove members; then every member goes to the queue as a
// reconcile command of its own and none is returned. A failure is added to t; members
// already handed to the queue stay there (reconciling them twice is harmless).
func (w *Worker) groupTargets(ctx context.Context, d *Delivery, g string, t *tally, log *slog.Logger) []Target {
	var (
		inline, batch []Target
		fanning       bool
		fanned        int
	)
	// The same for every redelivery of this message, different for another notification
	// even when a source gives no message id.
	sum := sha256.Sum256(d.Body)
	key := d.MessageID + "/" + hex.EncodeToString(sum[:8]) + "/groups/" + g
	send := func() bool {
		if len(batch) == 0 {
			return true
		}
		if err := w.opts.FanOut(ctx, key, batch); err != nil {
			t.add(fmt.Errorf("hand members of group %s to the queue: %w", g, asTemporary(err)))
			return false
		}
		fanned += len(batch)
		w.metrics.fannedOut.Add(float64(len(batch)))
		batch = nil
		return true
	}
	for id, err := range w.dir.GroupMembers(ctx, g) {
		if IsNotFound(err) {
			log.Info("group no longer exists; the scheduled resync covers its former members", slog.String(logkey.GroupID, g))
			t.acted++
			return nil
		}
		if err != nil {
			t.add(fmt.Errorf("list members of group %s: %w", g, err))
			return nil
		}
		tg := Target{Principal: id, Command: CommandReconcile, Source: "groups/members"}
		if !fanning {
			inline = append(inline, tg)
			if w.opts.FanOut == nil || len(inline) <= w.opts.FanOutAbove {
				continue
			}
			fanning, batch, inline = true, inline, nil
		} else {
			batch = append(batch, tg)
		}
		if len(batch) >= fanOutBatch && !send() {
			return nil
		}
	}
	if !fanning {
		return inline
	}
	if send() {
		log.Info("group members handed to the queue, one reconcile command each",
			slog.String(logkey.GroupID, g), slog.Int(logkey.Members, fanned))
		t.acted++
	}
	return nil
}

// asTemporary marks an error that says nothing about its handling as temporary (a queue
// send that failed is worth retrying); systemic and temporary errors pass unchanged.
func asTemporary(err error) error {
	if IsSystemic(err) || IsTemporary(err) {
		return err
	}
	return temporary{err}
}

type temporary struct{ error }

func (temporary) Temporary() bool { return true }
func (e temporary) Unwrap() error { return e.error }

// reconcile converges one principal, retrying temporary failures within the message, and
// writes its audit record.
func (w *Worker) reconcile(ctx context.Context, d *Delivery, tg Target, t *tally, log *slog.Logger) {
	for attempt := 0; ; attempt++ {
		start := w.opts.Clock.Now()
		res, shared, err := w.keyed.Do(ctx, tg, func(ctx context.Context) (Result, error) {
			return w.rec.Reconcile(ctx, tg)
		})
		w.metrics.duration.Observe(w.opts.Clock.Now().Sub(start).Seconds())
		if err == nil {
			w.reconciled(d, tg, res, nil, shared)
			// log already names the message (message_id, delivery_count): see handle.
			log.LogAttrs(ctx, slog.LevelInfo, "audit", append(res.LogAttrs(), slog.Bool(logkey.Coalesced, shared))...)
			t.acted++
			return
		}
		w.recheck(ctx, tg, err, t, log)
		wait, ok := w.retryWait(ctx, err, attempt)
		if !ok {
			w.reconciled(d, tg, res, err, shared)
			t.add(err)
			return
		}
		log.Debug("reconcile failed; retrying", slog.Int(logkey.Attempt, attempt+1), slog.Duration(logkey.Wait, wait))
		select {
		case <-ctx.Done():
			w.reconciled(d, tg, res, err, shared)
			t.add(err)
			return
		case <-w.opts.Clock.After(wait):
		}
	}
}

// recheckTimeout bounds one Recheck call; it runs even when the message's work has ended
// (a write cut short by the message timeout is one to re-check).
const recheckTimeout = 30 * time.Second

// recheck schedules a later reconcile of the principal when err says a write to it may
// still be applied after the reconcile returned (see Options.Recheck). Operator commands
// are not re-checked: a late write of theirs is what the operator asked for.
func (w *Worker) recheck(ctx context.Context, tg Target, err error, t *tally, log *slog.Logger) {
	oid, uncertain := uncertainWriteOf(err)
	if !uncertain || w.opts.Recheck == nil || tg.Command != CommandReconcile {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recheckTimeout)
	defer cancel()
	target := Target{Principal: oid, Type: tg.Type, Command: CommandReconcile, Source: sourceRecheck}
	if err := w.opts.Recheck(rctx, target, w.opts.Clock.Now()); err != nil {
		t.add(asTemporary(fmt.Errorf("schedule a re-check of %s after an unconfirmed write: %w", oid, err)))
		return
	}
	log.Info("write not confirmed; re-check scheduled", slog.String(logkey.ObjectID, oid))
}

// sourceRecheck is the Source of the reconcile command a re-check puts on the queue.
const sourceRecheck = "recheck"

// retryWait says whether a failed reconcile is retried within the message, and after how
// long: only temporary errors, at most Retries times, never past RetryWaitMax.
func (w *Worker) retryWait(ctx context.Context, err error, attempt int) (time.Duration, bool) {
	var pe *PermanentError
	if attempt >= w.opts.Retries || ctx.Err() != nil || IsSystemic(err) || errors.As(err, &pe) || !IsTemporary(err) {
		return 0, false
	}
	wait := max(RetryAfterOf(err), 200*time.Millisecond<<attempt)
	return wait, wait <= w.opts.RetryWaitMax
}

func (w *Worker) reconciled(d *Delivery, tg Target, res Result, err error, shared bool) {
	action := string(res.Action)
	if err != nil {
		action = actionError
	}
	w.metrics.reconciles.WithLabelValues(action).Inc()
	w.stats.reconciled(res.Action, err, shared)
	if w.opts.Observer != nil {
		w.opts.Observer.Reconciled(d, tg, res, err)
	}
}

// keepLocked renews d's lock in the background until the returned stop is called. It
// renews at half the lock's remaining time; a lost lock ends the renewal (the work goes on:
// it is idempotent, and the message will be delivered again).
func (w *Worker) keepLocked(work context.Context, d *Delivery, log *slog.Logger) (stop func()) {
	if d.LockedUntil.IsZero() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(work)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.renewLoop(ctx, d, log)
	}()
	return func() { cancel(); <-done }
}

func (w *Worker) renewLoop(ctx context.Context, d *Delivery, log *slog.Logger) {
	const minWait = 10 * time.Millisecond
	for {
		left := d.LockExpiry().Sub(w.opts.Clock.Now())
		if left <= 0 {
			log.Warn("message lock expired while working; it will be delivered again")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-w.opts.Clock.After(max(left/2, minWait)):
		}
		err := w.src.RenewLock(ctx, d)
		switch {
		case err == nil, ctx.Err() != nil:
		case errors.Is(err, ErrLockLost):
			log.Warn("message lock lost while working; it will be delivered again")
			return
		default:
			log.Warn("renewing the message lock failed", slog.String(logkey.Error, err.Error()))
		}
	}
}
