package worker

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

// ServiceBusOptions tune a ServiceBusSource.
type ServiceBusOptions struct {
	// IdleTimeout is how long the receiver may go without a message before the watchdog
	// replaces it (default 5 min): receivers have been seen to go silent after long idle
	// periods while messages wait on the queue.
	IdleTimeout time.Duration
	// Logger receives reconnects and watchdog restarts (default: discard).
	Logger *slog.Logger
}

// ServiceBusSource is a Source over a Service Bus queue in peek-lock mode. It creates its
// receiver lazily, recreates it after the SDK gave up on the connection (CodeConnectionLost,
// reported to the worker as systemic so that its circuit opens) and when the watchdog finds
// it silent for longer than IdleTimeout. A replaced receiver stays open until the messages
// received through it are settled.
type ServiceBusSource struct {
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

var _ Source = (*ServiceBusSource)(nil)

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

// NewServiceBusSource returns a source that takes its receivers from newReceiver, for
// instance
//
//	func(ctx context.Context) (*azservicebus.Receiver, error) { return client.NewReceiverForQueue(queue, nil) }
func NewServiceBusSource(newReceiver func(context.Context) (*azservicebus.Receiver, error), o ServiceBusOptions) *ServiceBusSource {
	return newServiceBusSource(func(ctx context.Context) (receiver, error) {
		r, err := newReceiver(ctx)
		if err != nil {
			return nil, err
		}
		return r, nil
	}, o)
}

func newServiceBusSource(newReceiver func(context.Context) (receiver, error), o ServiceBusOptions) *ServiceBusSource {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ServiceBusSource{newReceiver: newReceiver, idle: cmp.Or(o.IdleTimeout, 5*time.Minute), log: log,
		links: map[*sbLink]bool{}}
}

// Ready reports nil once a receiver exists and the last receive did not fail.
func (s *ServiceBusSource) Ready() error {
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
func (s *ServiceBusSource) Receive(ctx context.Context, max int) ([]*Delivery, error) {
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
			s.log.Warn("service bus receiver silent for too long; recreating it", slog.Duration("idle_timeout", s.idle))
			s.retire(link)
		}
		return nil, nil
	}
	return nil, s.failed("receive", err)
}

// connect returns the current receiver, creating one when needed.
func (s *ServiceBusSource) connect(ctx context.Context) (*sbLink, error) {
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

// failed classifies a receive error. A lost connection or refused credentials are
// systemic; the receiver is replaced on the next Receive.
func (s *ServiceBusSource) failed(op string, err error) error {
	var sbErr *azservicebus.Error
	code := azservicebus.Code("")
	if errors.As(err, &sbErr) {
		code = sbErr.Code
	}
	s.mu.Lock()
	s.lastErr = fmt.Sprintf("service bus %s: %v", op, err)
	link := s.link
	s.mu.Unlock()
	systemic := code == azservicebus.CodeConnectionLost || code == azservicebus.CodeUnauthorizedAccess
	if link != nil && (systemic || code == azservicebus.CodeClosed) {
		s.retire(link)
	}
	return &sourceFault{op: "service bus " + op, err: err, systemic: systemic}
}

func (s *ServiceBusSource) deliveries(link *sbLink, msgs []*azservicebus.ReceivedMessage) []*Delivery {
	s.mu.Lock()
	s.lastErr = ""
	link.outstanding += len(msgs)
	s.mu.Unlock()
	ds := make([]*Delivery, len(msgs))
	for i, m := range msgs {
		ds[i] = &Delivery{MessageID: m.MessageID, Body: m.Body, Properties: maps.Clone(m.ApplicationProperties),
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
func (s *ServiceBusSource) retire(link *sbLink) {
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
func (s *ServiceBusSource) release(link *sbLink) {
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
func (s *ServiceBusSource) forgetIfIdleLocked(link *sbLink) bool {
	if !link.retired || link.outstanding != 0 || !s.links[link] {
		return false
	}
	delete(s.links, link)
	return true
}

func (s *ServiceBusSource) closeLink(link *sbLink) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := link.r.Close(ctx); err != nil {
		s.log.Debug("closing a replaced service bus receiver", slog.String(keyError, err.Error()))
	}
}

// Complete removes the message from the queue.
func (s *ServiceBusSource) Complete(ctx context.Context, d *Delivery) error {
	return s.settle(d, "complete", func(r receiver, m *azservicebus.ReceivedMessage) error {
		return r.CompleteMessage(ctx, m, nil)
	})
}

// Abandon returns the message to the queue; its delivery count grows.
func (s *ServiceBusSource) Abandon(ctx context.Context, d *Delivery) error {
	return s.settle(d, "abandon", func(r receiver, m *azservicebus.ReceivedMessage) error {
		return r.AbandonMessage(ctx, m, nil)
	})
}

// DeadLetter moves the message to the dead-letter sub-queue with reason and description.
func (s *ServiceBusSource) DeadLetter(ctx context.Context, d *Delivery, reason, description string) error {
	return s.settle(d, "dead-letter", func(r receiver, m *azservicebus.ReceivedMessage) error {
		return r.DeadLetterMessage(ctx, m, &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &description})
	})
}

func (s *ServiceBusSource) settle(d *Delivery, op string, f func(receiver, *azservicebus.ReceivedMessage) error) error {
	h, ok := d.Handle.(*sbHandle)
	if !ok {
		return fmt.Errorf("service bus %s: message %s did not come from this source", op, d.MessageID)
	}
	if d.MarkSettled() {
		return fmt.Errorf("service bus %s of %s: %w", op, d.MessageID, ErrAlreadySettled)
	}
	err := f(h.link.r, h.msg)
	s.release(h.link)
	return lockErr("service bus "+op, err)
}

// RenewLock extends the message's lock.
func (s *ServiceBusSource) RenewLock(ctx context.Context, d *Delivery) error {
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

// lockErr wraps err, adding ErrLockLost when Service Bus says the lock is gone.
func lockErr(op string, err error) error {
	var sbErr *azservicebus.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &sbErr) && sbErr.Code == azservicebus.CodeLockLost:
		return fmt.Errorf("%s: %w: %w", op, ErrLockLost, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Close closes every receiver, the current one and those kept for unsettled messages.
func (s *ServiceBusSource) Close(ctx context.Context) error {
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
