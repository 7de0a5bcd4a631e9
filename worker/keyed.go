package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
)

// keyed runs at most one reconcile per principal at a time in the process, and coalesces
// the requests that pile up meanwhile: identical requests (same principal, command and type
// hint) that arrive while one runs share ONE follow-up run, which starts after the running
// one ends and therefore reads the directory after every one of them arrived. Different
// commands for the same principal queue in arrival order.
//
// The key is the lower-cased principal as written (object id or UPN); a UPN and the object
// id it names are different keys, because telling them apart would take a directory read.
type keyed struct {
	mu    sync.Mutex
	lanes map[string]*lane
}

// lane is one principal's run and its queue of follow-ups.
type lane struct {
	busy  bool
	queue []*keyedCall // waiting, in order; each variant at most once
}

// keyedCall is one run shared by every request that joined it.
type keyedCall struct {
	variant string
	joined  int           // requests that share it besides its starter
	ready   chan struct{} // closed when the call may start
	done    chan struct{} // closed when res and err are set
	res     Result
	err     error
}

func newKeyed() *keyed { return &keyed{lanes: map[string]*lane{}} }

func targetKey(t Target) string { return strings.ToLower(strings.TrimSpace(t.Principal)) }

func targetVariant(t Target) string {
	return string(withDefaults(t).Command) + "|" + string(t.Type)
}

// Do runs fn for t once it is t's principal's turn, or shares a queued identical run. The
// bool is true when the result came from a run another request started. fn is called with
// the ctx of the request that started the run.
func (k *keyed) Do(ctx context.Context, t Target, fn func(context.Context) (Result, error)) (Result, bool, error) {
	for {
		res, shared, err := k.do(ctx, t, fn)
		// A shared run ended by its starter's cancellation says nothing about this request:
		// run again while this request's own context is alive.
		if shared && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue
		}
		return res, shared, err
	}
}

func (k *keyed) do(ctx context.Context, t Target, fn func(context.Context) (Result, error)) (Result, bool, error) {
	key, variant := targetKey(t), targetVariant(t)
	k.mu.Lock()
	l := k.lanes[key]
	if l == nil {
		l = &lane{}
		k.lanes[key] = l
	}
	if !l.busy {
		l.busy = true
		c := &keyedCall{variant: variant, done: make(chan struct{})}
		k.mu.Unlock()
		res, err := k.run(ctx, key, l, c, fn)
		return res, false, err
	}
	for _, c := range l.queue {
		if c.variant == variant {
			c.joined++
			k.mu.Unlock()
			return k.wait(ctx, c)
		}
	}
	c := &keyedCall{variant: variant, ready: make(chan struct{}), done: make(chan struct{})}
	l.queue = append(l.queue, c)
	k.mu.Unlock()
	// The starter waits for its turn even when ctx ends, because others may have joined
	// its call; a cancelled run returns at once with the context's error.
	<-c.ready
	res, err := k.run(ctx, key, l, c, fn)
	return res, false, err
}

// wait returns the result of a call this request joined.
func (k *keyed) wait(ctx context.Context, c *keyedCall) (Result, bool, error) {
	select {
	case <-c.done:
		return c.res, true, c.err
	case <-ctx.Done():
		return Result{}, false, context.Cause(ctx)
	}
}

// run executes c, publishes its result and hands the lane to the next queued call.
func (k *keyed) run(ctx context.Context, key string, l *lane, c *keyedCall, fn func(context.Context) (Result, error)) (Result, error) {
	if err := context.Cause(ctx); err != nil {
		c.err = err
	} else {
		c.res, c.err = fn(ctx)
	}
	close(c.done)

	k.mu.Lock()
	defer k.mu.Unlock()
	if len(l.queue) == 0 {
		l.busy = false
		delete(k.lanes, key)
		return c.res, c.err
	}
	next := l.queue[0]
	l.queue = l.queue[1:]
	close(next.ready)
	return c.res, c.err
}
