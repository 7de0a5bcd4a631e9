package worker

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// stepClock is a clock that moves only when the test advances it. After channels fire
// when the clock passes their time; Waiters tells how many are pending, so a test can
// wait for a goroutine to be parked before advancing.
type stepClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []stepWaiter
}

type stepWaiter struct {
	at time.Time
	ch chan time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, stepWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves time forward by d and fires the waiters that are due.
func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// WaitForWaiters blocks until n After calls are pending (or fails the test after 5 s).
func (c *stepClock) WaitForWaiters(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.waiters)
		c.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clock waiters, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRenderProgress(t *testing.T) {
	tests := []struct {
		name     string
		s        progressSnapshot
		terminal bool
		want     string
	}{
		{"log line while enumerating", progressSnapshot{"plan", 1200, -1, 10 * time.Second}, false,
			"backfill plan: done=1200 total=enumerating rate=120/s elapsed=10s"},
		{"log line with ETA", progressSnapshot{"plan", 1200, 3000, 10 * time.Second}, false,
			"backfill plan: done=1200 total=3000 rate=120/s elapsed=10s eta=0:15"},
		{"log line before any progress", progressSnapshot{"apply", 0, 50, 0}, false,
			"backfill apply: done=0 total=50 rate=0/s elapsed=0s eta=?"},
		{"bar while enumerating", progressSnapshot{"plan", 1200, -1, 10 * time.Second}, true,
			"plan  1200 principals, 120/s (enumerating)"},
		{"bar half way", progressSnapshot{"apply", 50, 100, 25 * time.Second}, true,
			"apply [===============               ] 50/100 2/s ETA 0:25"},
		{"bar past an hour", progressSnapshot{"plan", 1, 10000, time.Second}, true,
			"plan  [                              ] 1/10000 1/s ETA 2:46:39"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renderProgress(tt.s, tt.terminal); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the meter's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressMeterLogsEveryFiveSeconds(t *testing.T) {
	clock := newStepClock()
	var out syncBuffer
	p := startProgress(&out, false, clock, "plan", -1)
	p.add(10)
	clock.WaitForWaiters(t, 1)
	clock.Advance(4 * time.Second)
	if got := out.String(); got != "" {
		t.Fatalf("printed %q before five seconds", got)
	}
	clock.Advance(time.Second)
	clock.WaitForWaiters(t, 1) // drawn, and waiting for the next tick
	p.setTotal(40)
	p.add(5)
	clock.Advance(5 * time.Second)
	clock.WaitForWaiters(t, 1)
	p.finish()
	want := []string{
		"backfill plan: done=10 total=enumerating rate=2/s elapsed=5s",
		"backfill plan: done=15 total=40 rate=2/s elapsed=10s eta=0:17",
		"backfill plan: done=15 total=40 rate=2/s elapsed=10s eta=0:17", // final
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestProgressMeterRedrawsBarInPlace(t *testing.T) {
	clock := newStepClock()
	var out syncBuffer
	p := startProgress(&out, true, clock, "apply", 4)
	p.add(2)
	clock.WaitForWaiters(t, 1)
	clock.Advance(time.Second)
	clock.WaitForWaiters(t, 1)
	p.add(2)
	p.finish()
	got := out.String()
	if strings.Count(got, "\r") != 2 || !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("output %q: want two in-place redraws and one final newline", got)
	}
	if !strings.Contains(got, "] 4/4 ") {
		t.Errorf("output %q: want the final 4/4", got)
	}
}

func TestNilProgressMeterIsQuiet(t *testing.T) {
	p := startProgress(nil, true, newStepClock(), "plan", -1)
	p.add(1) // must not panic
	p.setTotal(1)
	p.finish()
}
