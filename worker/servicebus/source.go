// Package servicebus is the Service Bus transport: the Source the worker receives, settles
// and renews through, and the Sender of reconcile commands (the worker's fan-out and
// re-checks, backfill's enqueue, the relay and the enqueue command). It is the only package
// besides cmd that imports azservicebus, and it classifies the SDK's errors in one place
// (errors.go).
package servicebus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// receiver is the part of *azservicebus.Receiver (peek-lock mode) the source uses.
type receiver interface {
	ReceiveMessages(ctx context.Context, maxMessages int, o *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
	CompleteMessage(ctx context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.CompleteMessageOptions) error
	AbandonMessage(ctx context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.AbandonMessageOptions) error
	DeadLetterMessage(ctx context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.DeadLetterOptions) error
	RenewMessageLock(ctx context.Context, m *azservicebus.ReceivedMessage, o *azservicebus.RenewMessageLockOptions) error
	Close(ctx context.Context) error
}

var _ receiver = (*azservicebus.Receiver)(nil)

// Options tune a Source.
type Options struct {
	// IdleTimeout is how long the receiver may go without a message before the watchdog
	// replaces it (default 5 min): receivers have been seen to go silent after long idle
	// periods while messages wait on the queue.
	IdleTimeout time.Duration
	// Logger receives reconnects and watchdog restarts (default: discard).
	Logger *slog.Logger
}

// Source is a worker.Source over a Service Bus queue in peek-lock mode. It creates its
// receiver lazily, recreates it after the SDK gave up on the connection (CodeConnectionLost,
// reported to the worker as systemic so that its circuit opens) and when the watchdog finds
// it silent for longer than IdleTimeout. A replaced receiver stays open until the messages
// received through it are settled.
type Source struct {
	newReceiver func(context.Context) (receiver, error)
	idle        time.Duration
	log         *slog.Logger

	// silent is how long the current receiver has waited in ReceiveMessages since its last
	// message; only the receiving goroutine uses it.
	silent time.Duration

	mu      sync.Mutex
	link    *sbLink // the current receiver; nil when one must be created
	links   map[*sbLink]bool
	lastErr string
}

var _ worker.Source = (*Source)(nil)

// sbLink is one receiver and the count of its unsettled messages.
type sbLink struct {
	r           receiver
	outstanding int
	retired     bool
}

// sbHandle is a delivery's record of where it came from.
type sbHandle struct {
	msg  *azservicebus.ReceivedMessage
	link *sbLink
}

// NewSource returns a source that takes its receivers from newReceiver, for
// instance
//
//	func(ctx context.Context) (*azservicebus.Receiver, error) { return client.NewReceiverForQueue(queue, nil) }
func NewSource(newReceiver func(context.Context) (*azservicebus.Receiver, error), o Options) *Source {
	return newSource(func(ctx context.Context) (receiver, error) {
		r, err := newReceiver(ctx)
		if err != nil {
			return nil, err
		}
		return r, nil
	}, o)
}

func newSource(newReceiver func(context.Context) (receiver, error), o Options) *Source {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{newReceiver: newReceiver, idle: cmp.Or(o.IdleTimeout, 5*time.Minute), log: log,
		links: map[*sbLink]bool{}}
}

// Ready reports nil once a receiver exists and the last receive did not fail.
func (s *Source) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.lastErr != "":
		return errors.New("service bus: receiving failed (the error is in the log)")
	case s.link == nil:
		return errors.New("service bus: not connected")
	}
	return nil
}

// Receive waits for messages, at most max. It returns no messages and no error when the
// watchdog replaced a silent receiver.
func (s *Source) Receive(ctx context.Context, max int) ([]*worker.Delivery, error) {
	link, err := s.connect(ctx)
	if err != nil {
		return nil, s.failed("create receiver", err)
	}
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, s.idle-s.silent)
	msgs, err := link.r.ReceiveMessages(rctx, max, nil)
	quiet := rctx.Err() != nil // the idle bound passed (or ctx ended, checked first below)
	cancel()
	if len(msgs) > 0 { // like the SDK, an error after some messages shows on the next call
		s.silent = 0
		return s.deliveries(link, msgs), nil
	}
	s.silent += time.Since(start)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err == nil || quiet:
		s.mu.Lock()
		s.lastErr = "" // the receiver answered: nothing was waiting
		s.mu.Unlock()
		if s.silent >= s.idle {
			s.log.Warn("service bus receiver silent for too long; recreating it", slog.Duration(logkey.IdleTimeout, s.idle))
			s.retire(link)
		}
		return nil, nil
	}
	return nil, s.failed("receive", err)
}

// connect returns the current receiver, creating one when needed.
func (s *Source) connect(ctx context.Context) (*sbLink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != nil {
		return s.link, nil
	}
	r, err := s.newReceiver(ctx)
	if err != nil {
		return nil, err
	}
	s.link = &sbLink{r: r}
	s.links[s.link] = true
	s.silent = 0
	return s.link, nil
}

// failed classifies a receive error (errors.go). A lost connection or refused credentials
// are systemic; the receiver is replaced on the next Receive.
func (s *Source) failed(op string, err error) error {
	s.mu.Lock()
	s.lastErr = fmt.Sprintf("service bus %s: %v", op, err)
	link := s.link
	s.mu.Unlock()
	systemic := isSystemic(err)
	if link != nil && (systemic || code(err) == azservicebus.CodeClosed) {
		s.retire(link)
	}
	return worker.SourceError("service bus "+op, err, systemic)
}

func (s *Source) deliveries(link *sbLink, msgs []*azservicebus.ReceivedMessage) []*worker.Delivery {
	s.mu.Lock()
	s.lastErr = ""
	link.outstanding += len(msgs)
	s.mu.Unlock()
	ds := make([]*worker.Delivery, len(msgs))
	for i, m := range msgs {
		ds[i] = &worker.Delivery{MessageID: m.MessageID, Body: m.Body, Properties: maps.Clone(m.ApplicationProperties),
			DeliveryCount: m.DeliveryCount, EnqueuedTime: deref(m.EnqueuedTime), LockedUntil: deref(m.LockedUntil),
			Handle: &sbHandle{msg: m, link: link}}
	}
	return ds
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// retire stops using link for new messages; it is closed once its messages are settled.
func (s *Source) retire(link *sbLink) {
	s.mu.Lock()
	if s.link == link {
		s.link = nil
	}
	link.retired = true
	closeNow := s.forgetIfIdleLocked(link)
	s.mu.Unlock()
	if closeNow {
		s.closeLink(link)
	}
}

// release records that one of link's messages is settled.
func (s *Source) release(link *sbLink) {
	s.mu.Lock()
	link.outstanding--
	closeNow := s.forgetIfIdleLocked(link)
	s.mu.Unlock()
	if closeNow {
		s.closeLink(link)
	}
}

// forgetIfIdleLocked forgets link and reports true, for the caller to close it once s.mu
// is released, when it is retired and none of its messages is outstanding. Call it with
// s.mu held.
func (s *Source) forgetIfIdleLocked(link *sbLink) bool {
	if !link.retired || link.outstanding != 0 || !s.links[link] {
		return false
	}
	delete(s.links, link)
	return true
}

func (s *Source) closeLink(link *sbLink) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := link.r.Close(ctx); err != nil {
		s.log.Debug("closing a replaced service bus receiver", slog.String(logkey.Error, err.Error()))
	}
}

// Complete removes the message from the queue.
func (s *Source) Complete(ctx context.Context, d *worker.Delivery) error {
	return s.settle(d, "complete", func(r receiver, m *azservicebus.ReceivedMessage) error {
		return r.CompleteMessage(ctx, m, nil)
	})
}

// Abandon returns the message to the queue; its delivery count grows.
func (s *Source) Abandon(ctx context.Context, d *worker.Delivery) error {
	return s.settle(d, "abandon", func(r receiver, m *azservicebus.ReceivedMessage) error {
		return r.AbandonMessage(ctx, m, nil)
	})
}

// DeadLetter moves the message to the dead-letter sub-queue with reason and description.
func (s *Source) DeadLetter(ctx context.Context, d *worker.Delivery, reason, description string) error {
	return s.settle(d, "dead-letter", func(r receiver, m *azservicebus.ReceivedMessage) error {
		return r.DeadLetterMessage(ctx, m, &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &description})
	})
}

func (s *Source) settle(d *worker.Delivery, op string, f func(receiver, *azservicebus.ReceivedMessage) error) error {
	h, ok := d.Handle.(*sbHandle)
	if !ok {
		return fmt.Errorf("service bus %s: message %s did not come from this source", op, d.MessageID)
	}
	if d.MarkSettled() {
		return fmt.Errorf("service bus %s of %s: %w", op, d.MessageID, worker.ErrAlreadySettled)
	}
	err := f(h.link.r, h.msg)
	s.release(h.link)
	return lockErr("service bus "+op, err)
}

// RenewLock extends the message's lock.
func (s *Source) RenewLock(ctx context.Context, d *worker.Delivery) error {
	h, ok := d.Handle.(*sbHandle)
	if !ok {
		return fmt.Errorf("service bus renew lock: message %s did not come from this source", d.MessageID)
	}
	if err := h.link.r.RenewMessageLock(ctx, h.msg, nil); err != nil {
		return lockErr("service bus renew lock", err)
	}
	d.SetLockExpiry(deref(h.msg.LockedUntil))
	return nil
}

// Close closes every receiver, the current one and those kept for unsettled messages.
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	links := make([]*sbLink, 0, len(s.links))
	for l := range s.links {
		links = append(links, l)
	}
	clear(s.links)
	s.link = nil
	s.mu.Unlock()
	var errs []error
	for _, l := range links {
		errs = append(errs, l.r.Close(ctx))
	}
	return errors.Join(errs...)
}
