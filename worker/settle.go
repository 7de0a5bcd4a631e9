package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
)

// reasonSystemic is the settlement reason of a message that failed on a systemic fault.
const reasonSystemic = "systemic"

// settleTimeout bounds one settlement call; it runs even after shutdown began.
const settleTimeout = 30 * time.Second

// errMessageTimeout is the cause of a message's context ending after MessageTimeout.
var errMessageTimeout = fmt.Errorf("message timeout: %w", context.DeadlineExceeded)

// settlement is how one message is to be settled, by the design's table.
type settlement struct {
	outcome     Outcome
	reason      string // dead-letter reason, or a short cause for abandon
	description string // dead-letter description
	err         error  // what made the message fail, logged once when settled
	rejected    []*PermanentError
	reconciled  int
}

// tally collects how a message's items went.
type tally struct {
	w        *Worker
	acted    int               // items handled: reconciled (no-ops included), events handled
	rejected []*PermanentError // items refused for good: decode rejections, rejected principals
	retry    error             // the first temporary (or unclassified) failure
	systemic error             // the first systemic failure
}

// add classifies one item's failure. Systemic faults open the circuit; an error that says
// neither systemic, permanent nor temporary is treated as temporary — retrying is safe,
// dead-lettering a message for a bug would lose it — and counted, because it is a bug.
func (t *tally) add(err error) {
	var pe *PermanentError
	switch {
	case IsSystemic(err):
		if t.systemic == nil {
			t.systemic = err
		}
		t.w.circuit.trip(err)
	case errors.As(err, &pe):
		t.rejected = append(t.rejected, pe)
	case IsTemporary(err), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if t.retry == nil {
			t.retry = err
		}
	default:
		t.w.metrics.unclassified.Inc()
		if t.retry == nil {
			t.retry = &unclassifiedError{err}
		}
	}
}

// unclassifiedError marks an error that said nothing about how to handle it.
type unclassifiedError struct{ err error }

func (e *unclassifiedError) Error() string { return "unclassified error: " + e.err.Error() }
func (e *unclassifiedError) Unwrap() error { return e.err }

// settlement applies the design's settlement table. A fault that is not the message's own
// (systemic, temporary) wins over a rejected item, so a message is only dead-lettered when
// a retry could not change anything.
func (t *tally) settlement() settlement {
	v := settlement{rejected: t.rejected, reconciled: t.acted}
	var uc *unclassifiedError
	switch {
	case t.systemic != nil:
		v.outcome, v.reason, v.err = OutcomeAbandoned, reasonSystemic, t.systemic
	case errors.As(t.retry, &uc):
		v.outcome, v.reason, v.err = OutcomeAbandoned, "unclassified", t.retry
	case t.retry != nil:
		v.outcome, v.reason, v.err = OutcomeAbandoned, "temporary", t.retry
	case len(t.rejected) > 0 && t.acted == 0:
		first := t.rejected[0]
		v.outcome, v.reason, v.description, v.err = OutcomeDeadLettered, first.Reason, first.Description, first
	default:
		v.outcome = OutcomeCompleted
	}
	return v
}

// settle settles d by v and logs the message's outcome once. A lost lock or a failed
// settlement leaves the message to the broker, which delivers it again.
func (w *Worker) settle(work context.Context, d *Delivery, v settlement, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(work), settleTimeout)
	defer cancel()
	var err error
	switch v.outcome {
	case OutcomeCompleted:
		err = w.src.Complete(ctx, d)
	case OutcomeDeadLettered:
		err = w.src.DeadLetter(ctx, d, v.reason, v.description)
	default:
		err = w.src.Abandon(ctx, d)
	}
	outcome := v.outcome
	if err != nil {
		outcome = OutcomeReleased
	}
	w.logSettled(log, v, outcome, err)
	w.metrics.messages.WithLabelValues(string(outcome)).Inc()
	if outcome == OutcomeDeadLettered {
		w.metrics.deadLetters.WithLabelValues(v.reason).Inc()
	}
	w.stats.settled(outcome)
	if w.opts.Observer != nil {
		w.opts.Observer.Settled(d, outcome, v.reason)
	}
}

// logSettled writes the one record of how a message was settled, and why.
func (w *Worker) logSettled(log *slog.Logger, v settlement, outcome Outcome, settleErr error) {
	attrs := []any{slog.String(logkey.Outcome, string(outcome)), slog.Int(logkey.Reconciled, v.reconciled)}
	if v.reason != "" {
		attrs = append(attrs, slog.String(logkey.Reason, v.reason))
	}
	if v.err != nil {
		attrs = append(attrs, slog.String(logkey.Error, v.err.Error()))
	}
	if len(v.rejected) > 0 {
		attrs = append(attrs, slog.Any(logkey.Rejected, rejections(v.rejected)))
	}
	switch {
	case errors.Is(settleErr, ErrLockLost):
		log.Warn("message lock lost before settling; it will be delivered again",
			append(attrs, slog.String(logkey.Wanted, string(v.outcome)))...)
	case settleErr != nil:
		log.Error("settling the message failed; it will be delivered again",
			append(attrs, slog.String(logkey.Wanted, string(v.outcome)), slog.String(logkey.SettleError, settleErr.Error()))...)
	case outcome == OutcomeDeadLettered:
		log.Warn("message dead-lettered", append(attrs, slog.String(logkey.Description, v.description))...)
	case v.reason == "unclassified":
		log.Error("message abandoned on an unclassified error", attrs...)
	case outcome == OutcomeAbandoned:
		log.Warn("message abandoned", attrs...)
	case len(v.rejected) > 0:
		log.Warn("message completed; some items were rejected", attrs...)
	default:
		log.Info("message completed", attrs...)
	}
}

// rejection is one rejected item in a settlement record; the items are logged as one list,
// so the record never repeats a key.
type rejection struct {
	Reason      string `json:"reason"`
	Description string `json:"description"`
}

func rejections(errs []*PermanentError) []rejection {
	out := make([]rejection, len(errs))
	for i, e := range errs {
		out[i] = rejection{Reason: e.Reason, Description: e.Description}
	}
	return out
}
