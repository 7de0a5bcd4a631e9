package clock

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Epoch is where every fake clock starts.
var Epoch = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)

// Fake is the tests' Clock (and, through its methods, KeeperOptions.Now/After); tests only. Its
// time moves only when a test or a wait moves it, and every wait asked for is recorded
// (Waits), so timing is checked without sleeping. It has two modes:
//
//   - NewFake: After fires when Advance passes its deadline (at once for d <= 0);
//     Pending and WaitForWaiters tell a test when a goroutine is parked on it.
//   - NewInstant: After fires at once and moves time forward by d, so retries and
//     backoffs cost nothing.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	instant bool
	waits   []time.Duration
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewFake returns a clock whose waits end only when Advance passes them.
func NewFake() *Fake { return &Fake{now: Epoch} }

// NewInstant returns a clock whose waits end at once, moving time forward.
func NewInstant() *Fake { return &Fake{now: Epoch, instant: true} }

func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Fake) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	switch {
	case c.instant:
		c.now = c.now.Add(d)
		ch <- c.now
	case d <= 0:
		ch <- c.now
	default:
		c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	}
	return ch
}

// Advance moves time forward by d and fires the waits that are due.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waiters = slices.DeleteFunc(c.waiters, func(w waiter) bool {
		if w.at.After(c.now) {
			return false
		}
		w.ch <- c.now
		return true
	})
}

// Waits returns every duration After was asked for, in order.
func (c *Fake) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

// Pending returns how many After calls are waiting for Advance.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// WaitForWaiters blocks until at least n After calls are pending, so a test can advance
// the clock only once the goroutine it drives is parked on it.
func (c *Fake) WaitForWaiters(t testing.TB, n int) {
	t.Helper()
	WaitUntil(t, "goroutines to wait on the fake clock", func() bool { return c.Pending() >= n })
}

// WaitUntil polls cond for up to 10 s of real time, for progress that only another
// goroutine can show.
func WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Waiting reports whether some After call is pending that is due exactly d from now: a
// goroutine that waits a known duration has parked again.
func (c *Fake) Waiting(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiters {
		if w.at.Sub(c.now) == d {
			return true
		}
	}
	return false
}
