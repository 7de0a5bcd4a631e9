package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// queue is an in-process broker with Service Bus's delivery semantics, made for long runs:
// bodies are produced lazily by a generator (so memory does not grow with the number of
// messages) or sent while it runs, an abandoned message comes back after a backoff with its
// delivery count raised and is dead-lettered at maxDelivery, and the queue outlives its
// receivers: Close only disconnects one (its unsettled messages come back, as when their
// locks expire), so a restarted worker can consume the same queue. Several workers can
// consume it at once, each through its own receiver (replicas on one Service Bus queue).
type queue struct {
	gen         func(i int) []byte // body of generated message i (0-based); nil when none
	total       int                // messages gen produces
	maxDelivery int
	backoff     func(deliveryCount uint32) time.Duration

	mu        sync.Mutex
	next      int           // next generated message
	sent      int           // messages added with send
	ready     []*queuedMsg  // waiting for delivery, in order
	wake      chan struct{} // closed and replaced on every change: wakes every receiver
	delivered map[*worker.Delivery]*queuedMsg
	owner     map[*worker.Delivery]int // the receiver holding each delivery
	sealed    bool                     // no more sends
	pending   int                      // produced and not settled
	completed int
	byOwner   map[int]int    // completed, by receiver
	dead      map[string]int // dead-lettered, by reason
}

// queuedMsg is one message and its broker state.
type queuedMsg struct {
	id          string
	body        []byte
	deliveries  uint32
	availableAt time.Time
}

var _ worker.Source = (*queue)(nil)

// newQueue returns a queue of total generated messages; gen may be nil for a queue fed only
// by send. maxDelivery 0 means 10, Service Bus's default.
func newQueue(total int, gen func(int) []byte, maxDelivery int) *queue {
	if maxDelivery <= 0 {
		maxDelivery = 10
	}
	return &queue{gen: gen, total: total, maxDelivery: maxDelivery, wake: make(chan struct{}),
		delivered: map[*worker.Delivery]*queuedMsg{}, owner: map[*worker.Delivery]int{}, byOwner: map[int]int{}, dead: map[string]int{},
		sealed:  gen != nil,
		backoff: func(n uint32) time.Duration { return min(time.Duration(n)*10*time.Millisecond, time.Second) }}
}

// send adds a message that becomes deliverable after delay.
func (q *queue) send(body []byte, delay time.Duration) {
	q.mu.Lock()
	q.sent++
	q.pending++
	q.ready = append(q.ready, &queuedMsg{id: "sent-" + strconv.Itoa(q.sent), body: body,
		availableAt: time.Now().Add(delay)})
	q.mu.Unlock()
	q.signal()
}

// seal says no more messages will be sent: once all are settled, Receive returns io.EOF.
func (q *queue) seal() {
	q.mu.Lock()
	q.sealed = true
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	q.mu.Lock()
	defer q.mu.Unlock()
	close(q.wake)
	q.wake = make(chan struct{})
}

// Receive delivers up to max messages, waiting for one; io.EOF once every message is
// produced and settled.
func (q *queue) Receive(ctx context.Context, max int) ([]*worker.Delivery, error) {
	return q.receive(ctx, max, 0)
}

func (q *queue) receive(ctx context.Context, max, owner int) ([]*worker.Delivery, error) {
	for {
		ds, wait, done, wake := q.take(max, owner)
		if len(ds) > 0 {
			return ds, nil
		}
		if done {
			return nil, io.EOF
		}
		var timer <-chan time.Time
		if wait > 0 {
			timer = time.After(wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		case <-timer:
		}
	}
}

// take hands out ready messages first, then generates new ones, up to max. With none to
// hand out it says how long until one is ready (0: wait for a wake), or done, and returns
// the wake channel of this moment.
func (q *queue) take(max, owner int) (ds []*worker.Delivery, wait time.Duration, done bool, wake chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	kept := q.ready[:0]
	for _, m := range q.ready {
		if len(ds) == max || m.availableAt.After(now) {
			if w := m.availableAt.Sub(now); len(ds) < max && (wait == 0 || w < wait) {
				wait = w
			}
			kept = append(kept, m)
			continue
		}
		ds = append(ds, q.deliverLocked(m, now, owner))
	}
	clear(q.ready[len(kept):])
	q.ready = kept
	for ; len(ds) < max && q.next < q.total; q.next++ {
		m := &queuedMsg{id: "msg-" + strconv.Itoa(q.next+1), body: q.gen(q.next)}
		q.pending++
		ds = append(ds, q.deliverLocked(m, now, owner))
	}
	done = len(ds) == 0 && q.sealed && q.next >= q.total && q.pending == 0
	return ds, wait, done, q.wake
}

func (q *queue) deliverLocked(m *queuedMsg, now time.Time, owner int) *worker.Delivery {
	m.deliveries++
	d := &worker.Delivery{MessageID: m.id, Body: m.body, DeliveryCount: m.deliveries, EnqueuedTime: now}
	q.delivered[d] = m
	q.owner[d] = owner
	return d
}

// errLockLost says a delivery is no longer held: it was released when its receiver closed.
var errLockLost = fmt.Errorf("settle: %w", worker.ErrLockLost)

// settle removes d from the delivered set.
func (q *queue) settleLocked(d *worker.Delivery) (*queuedMsg, error) {
	m, ok := q.delivered[d]
	if !ok {
		return nil, errLockLost
	}
	delete(q.delivered, d)
	delete(q.owner, d)
	return m, nil
}

// Complete removes the message.
func (q *queue) Complete(_ context.Context, d *worker.Delivery) error {
	q.mu.Lock()
	defer q.signal()
	defer q.mu.Unlock()
	owner := q.owner[d]
	if _, err := q.settleLocked(d); err != nil {
		return err
	}
	q.pending--
	q.completed++
	q.byOwner[owner]++
	return nil
}

// Abandon returns the message after a backoff, or dead-letters it at maxDelivery.
func (q *queue) Abandon(_ context.Context, d *worker.Delivery) error {
	q.mu.Lock()
	defer q.signal()
	defer q.mu.Unlock()
	m, err := q.settleLocked(d)
	if err != nil {
		return err
	}
	q.requeueLocked(m)
	return nil
}

func (q *queue) requeueLocked(m *queuedMsg) {
	if int(m.deliveries) >= q.maxDelivery {
		q.pending--
		q.dead[worker.ReasonMaxDeliveryCount]++
		return
	}
	m.availableAt = time.Now().Add(q.backoff(m.deliveries))
	q.ready = append(q.ready, m)
}

// DeadLetter moves the message to the dead letters, counted by reason.
func (q *queue) DeadLetter(_ context.Context, d *worker.Delivery, reason, _ string) error {
	q.mu.Lock()
	defer q.signal()
	defer q.mu.Unlock()
	if _, err := q.settleLocked(d); err != nil {
		return err
	}
	if reason == "" {
		return errors.New("dead letter without a reason")
	}
	q.pending--
	q.dead[reason]++
	return nil
}

// RenewLock does nothing: locks here do not expire while the receiver is connected.
func (q *queue) RenewLock(context.Context, *worker.Delivery) error { return nil }

// Close disconnects the receiver: messages it still holds come back for redelivery with
// their delivery count raised, as when their locks expire.
func (q *queue) Close(context.Context) error {
	q.closeOwner(0)
	return nil
}

func (q *queue) closeOwner(owner int) {
	q.mu.Lock()
	defer q.signal()
	defer q.mu.Unlock()
	for d, m := range q.delivered {
		if q.owner[d] != owner {
			continue
		}
		delete(q.delivered, d)
		delete(q.owner, d)
		q.requeueLocked(m)
	}
}

// receiver is one replica's connection to the queue: it receives and settles like the
// queue itself, and its Close gives back only the messages it holds.
type receiver struct {
	*queue
	id int
}

var _ worker.Source = receiver{}

// receiver returns the connection of replica id (0 is the queue's own).
func (q *queue) receiver(id int) receiver { return receiver{queue: q, id: id} }

func (r receiver) Receive(ctx context.Context, max int) ([]*worker.Delivery, error) {
	return r.receive(ctx, max, r.id)
}

func (r receiver) Close(context.Context) error {
	r.closeOwner(r.id)
	return nil
}

// queueStats is how the queue's messages ended.
type queueStats struct {
	produced, completed, pending int
	byOwner                      map[int]int // completed, by receiver
	dead                         map[string]int
}

func (q *queue) stats() queueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	dead := make(map[string]int, len(q.dead))
	for k, v := range q.dead {
		dead[k] = v
	}
	return queueStats{produced: q.next + q.sent, completed: q.completed, pending: q.pending, dead: dead,
		byOwner: maps.Clone(q.byOwner)}
}

func (s queueStats) deadLettered() int {
	n := 0
	for _, v := range s.dead {
		n += v
	}
	return n
}
