package worker

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
)

// FileOptions tune a FileSource or a MemorySource, which behave like a queue broker in
// process: an abandoned message comes back after a short backoff with its delivery count
// raised, and is dead-lettered with reason MaxDeliveryCountExceeded when the count reaches
// MaxDeliveryCount.
type FileOptions struct {
	// MaxDeliveryCount is the broker's limit (default 10, as Service Bus).
	MaxDeliveryCount int
	// Backoff is how long an abandoned message waits before it is delivered again, given
	// its delivery count (default 10 ms per delivery, at most 1 s; a negative result means
	// no wait).
	Backoff func(deliveryCount int) time.Duration
}

// ReasonMaxDeliveryCount is the reason a message is dead-lettered with when it was
// abandoned MaxDeliveryCount times (the broker's own reason).
const ReasonMaxDeliveryCount = "MaxDeliveryCountExceeded"

// DeadLetter is one message a file or memory source dead-lettered. In a FileSource's
// dead-letter output each is one JSON line: {"line":N,"reason":...,"description":...,"body":...},
// where body is the message as JSON when it is valid JSON, else as a string.
type DeadLetter struct {
	Line        int    `json:"line"`
	MessageID   string `json:"-"`
	Reason      string `json:"reason"`
	Description string `json:"description"`
	Body        []byte `json:"-"`
}

// MarshalJSON writes the dead-letter line format.
func (d DeadLetter) MarshalJSON() ([]byte, error) {
	var body any = string(d.Body)
	if json.Valid(d.Body) {
		body = json.RawMessage(bytes.TrimSpace(d.Body))
	}
	type plain DeadLetter
	return json.Marshal(struct {
		plain
		Body any `json:"body"`
	}{plain(d), body})
}

// FileSource is a finite Source over JSON Lines: one message body per line, blank lines
// skipped, MessageID "line-N" (N counts every line from 1). Receive returns io.EOF when every
// line is settled. Dead-lettered lines are written to the dead-letter writer as they happen.
type FileSource struct{ *localQueue }

// NewFileSource reads message bodies from r. deadLetter (nil: none) receives one JSON line
// per dead-lettered message. A line longer than MaxBodyBytes is cut there; Decode then
// rejects it as too large. A goroutine reads r ahead of Receive; it ends at the end of r or
// at Close (a Read that blocks, as on an idle terminal, holds it until the Read returns).
func NewFileSource(r io.Reader, deadLetter io.Writer, o FileOptions) *FileSource {
	q := newLocalQueue(o, "line-", deadLetter)
	lines := make(chan localMsg)
	q.in = lines
	go q.readLines(bufio.NewReader(r), lines)
	return &FileSource{q}
}

// MemorySource is a finite Source over bodies held in memory, for tests, benchmarks and
// the demo. MessageID is "msg-N" (N from 1).
type MemorySource struct{ *localQueue }

var (
	_ Source = (*FileSource)(nil)
	_ Source = (*MemorySource)(nil)
)

// NewMemorySource returns a source that delivers bodies in order.
func NewMemorySource(bodies [][]byte, o FileOptions) *MemorySource {
	q := newLocalQueue(o, "msg-", nil)
	for i, b := range bodies {
		q.ready = append(q.ready, &localMsg{q: q, n: i + 1, body: slices.Clone(b), enqueued: time.Now()})
	}
	q.pending = len(bodies)
	return &MemorySource{q}
}

// localQueue is the broker both sources share.
type localQueue struct {
	maxDelivery int
	backoff     func(int) time.Duration
	idPrefix    string
	dlw         io.Writer
	in          <-chan localMsg // messages still to read; nil once read to the end
	stop        chan struct{}   // closed by Close: the reader stops
	wake        chan struct{}   // signalled when a message becomes ready or pending drops

	mu          sync.Mutex
	ready       []*localMsg // waiting to be delivered, in order
	pending     int         // read and not settled (ready or delivered)
	completed   int
	deadLetters []DeadLetter
	readErr     error
	closed      bool
}

// localMsg is one message and its broker state.
type localMsg struct {
	q           *localQueue
	n           int
	body        []byte
	deliveries  uint32
	enqueued    time.Time
	availableAt time.Time
}

func newLocalQueue(o FileOptions, idPrefix string, dlw io.Writer) *localQueue {
	backoff := o.Backoff
	if backoff == nil {
		backoff = func(n int) time.Duration { return min(time.Duration(n)*10*time.Millisecond, time.Second) }
	}
	return &localQueue{maxDelivery: cmp.Or(max(o.MaxDeliveryCount, 0), 10), backoff: backoff, idPrefix: idPrefix,
		dlw: dlw, stop: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// readLines feeds the queue one non-blank line at a time until r ends or Close.
func (q *localQueue) readLines(r *bufio.Reader, out chan<- localMsg) {
	defer close(out)
	for n := 1; ; n++ {
		line, err := readLine(r)
		if len(bytes.TrimSpace(line)) > 0 {
			select {
			case out <- localMsg{n: n, body: line, enqueued: time.Now()}:
			case <-q.stop:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				q.mu.Lock()
				q.readErr = fmt.Errorf("read line %d: %w", n, err)
				q.mu.Unlock()
			}
			return
		}
	}
}

// readLine returns the next line without its end, cut after MaxBodyBytes+1 bytes so a
// huge line costs bounded memory and still fails Decode's size check.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if room := MaxBodyBytes + 1 - len(line); room > 0 {
			line = append(line, chunk[:min(len(chunk), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

// Receive delivers up to max ready messages, waiting for one; io.EOF once all input is read
// and settled.
func (q *localQueue) Receive(ctx context.Context, max int) ([]*Delivery, error) {
	for {
		in := q.pull(max)
		ds, wait, err := q.take(max, in == nil)
		if len(ds) > 0 || err != nil {
			return ds, err
		}
		var timer <-chan time.Time
		if wait > 0 {
			timer = time.After(wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.wake:
		case <-timer:
		case m, ok := <-in:
			q.push(m, ok)
		}
	}
}

// pull moves already-read input into the queue without waiting, up to max ready messages,
// and returns the input channel, nil once it is drained.
func (q *localQueue) pull(max int) <-chan localMsg {
	for q.in != nil {
		q.mu.Lock()
		enough := len(q.ready) >= max
		q.mu.Unlock()
		if enough {
			return q.in
		}
		select {
		case m, ok := <-q.in:
			q.push(m, ok)
		default:
			return q.in
		}
	}
	return nil
}

func (q *localQueue) push(m localMsg, ok bool) {
	if !ok {
		q.in = nil
		return
	}
	m.q = q
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ready = append(q.ready, &m)
	q.pending++
}

// take delivers the ready messages whose backoff is over. With nothing to deliver it says
// how long until one will be ready (0: wait for a wake), or io.EOF when everything is done.
func (q *localQueue) take(max int, inputDone bool) ([]*Delivery, time.Duration, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, 0, errors.New("source closed")
	}
	now := time.Now()
	var ds []*Delivery
	var wait time.Duration
	kept := q.ready[:0]
	for _, m := range q.ready {
		switch {
		case len(ds) == max:
			kept = append(kept, m)
		case m.availableAt.After(now):
			if w := m.availableAt.Sub(now); wait == 0 || w < wait {
				wait = w
			}
			kept = append(kept, m)
		default:
			m.deliveries++
			ds = append(ds, &Delivery{MessageID: q.idPrefix + strconv.Itoa(m.n), Body: m.body,
				DeliveryCount: m.deliveries, EnqueuedTime: m.enqueued, Handle: m})
		}
	}
	clear(q.ready[len(kept):])
	q.ready = kept
	if len(ds) == 0 && inputDone && q.pending == 0 {
		if q.readErr != nil {
			err := q.readErr
			q.readErr = nil
			return nil, 0, err
		}
		return nil, 0, io.EOF
	}
	return ds, wait, nil
}

func (q *localQueue) msgOf(d *Delivery, op string) (*localMsg, error) {
	m, ok := d.Handle.(*localMsg)
	if !ok || m.q != q {
		return nil, fmt.Errorf("%s: message %s did not come from this source", op, d.MessageID)
	}
	if d.MarkSettled() {
		return nil, fmt.Errorf("%s of %s: %w", op, d.MessageID, ErrAlreadySettled)
	}
	return m, nil
}

func (q *localQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Complete settles the message as done.
func (q *localQueue) Complete(_ context.Context, d *Delivery) error {
	if _, err := q.msgOf(d, "complete"); err != nil {
		return err
	}
	q.mu.Lock()
	q.pending--
	q.completed++
	q.mu.Unlock()
	q.signal()
	return nil
}

// Abandon queues the message again after the backoff, or dead-letters it once it was
// delivered MaxDeliveryCount times.
func (q *localQueue) Abandon(_ context.Context, d *Delivery) error {
	m, err := q.msgOf(d, "abandon")
	if err != nil {
		return err
	}
	if int(m.deliveries) >= q.maxDelivery {
		return q.deadLetter(m, ReasonMaxDeliveryCount,
			fmt.Sprintf("message was delivered %d times", m.deliveries))
	}
	q.mu.Lock()
	m.availableAt = time.Now().Add(q.backoff(int(m.deliveries)))
	q.ready = append(q.ready, m)
	q.mu.Unlock()
	q.signal()
	return nil
}

// DeadLetter settles the message as dead, with reason and description.
func (q *localQueue) DeadLetter(_ context.Context, d *Delivery, reason, description string) error {
	m, err := q.msgOf(d, "dead-letter")
	if err != nil {
		return err
	}
	return q.deadLetter(m, reason, description)
}

func (q *localQueue) deadLetter(m *localMsg, reason, description string) error {
	dl := DeadLetter{Line: m.n, MessageID: q.idPrefix + strconv.Itoa(m.n), Reason: reason,
		Description: description, Body: m.body}
	q.mu.Lock()
	defer q.signal()
	defer q.mu.Unlock()
	q.pending--
	q.deadLetters = append(q.deadLetters, dl)
	if q.dlw == nil {
		return nil
	}
	line, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("dead-letter %s: %w", dl.MessageID, err)
	}
	if _, err := q.dlw.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("dead-letter %s: write: %w", dl.MessageID, err)
	}
	return nil
}

// RenewLock does nothing: these sources have no locks.
func (q *localQueue) RenewLock(context.Context, *Delivery) error { return nil }

// Close stops reading input; later receives fail.
func (q *localQueue) Close(context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.stop)
	}
	return nil
}

// DeadLetters returns the messages dead-lettered so far, in order.
func (q *localQueue) DeadLetters() []DeadLetter {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.deadLetters)
}

// Completed returns how many messages were completed.
func (q *localQueue) Completed() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.completed
}
