package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
)

// waitQueued waits until key's lane has a queued call joined by n other requests.
func waitQueued(t *testing.T, k *keyed, key string, calls, joined int) {
	t.Helper()
	clk.WaitUntil(t, fmt.Sprintf("lane %s has %d queued calls with %d joined", key, calls, joined), func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		l := k.lanes[key]
		return l != nil && len(l.queue) == calls && l.queue[calls-1].joined == joined
	})
}

func TestKeyedCoalescesRequestsThatArriveWhileOneRuns(t *testing.T) {
	t.Parallel()
	k := newKeyed()
	tg := Target{Principal: "3F5D1C2E-9B8A-4E7F-8D6C-1A2B3C4D5E6F", Command: CommandReconcile}
	gate := make(chan struct{})
	var runs atomic.Int32
	fn := func(context.Context) (Result, error) {
		n := runs.Add(1)
		if n == 1 {
			<-gate
		}
		return Result{Reason: string(rune('0' + n))}, nil
	}
	first := make(chan Result)
	go func() { r, _, _ := k.Do(context.Background(), tg, fn); first <- r }()
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}

	type got struct {
		res    Result
		shared bool
	}
	results := make(chan got, 3)
	for i := range 3 {
		dup := tg
		if i == 1 {
			dup.Principal = "3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f" // same principal, other case
		}
		go func() {
			r, shared, err := k.Do(context.Background(), dup, fn)
			if err != nil {
				t.Error(err)
			}
			results <- got{r, shared}
		}()
	}
	waitQueued(t, k, "3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f", 1, 2)
	close(gate)

	if r := <-first; r.Reason != "1" {
		t.Errorf("first request got run %s, want 1", r.Reason)
	}
	var shared int
	for range 3 {
		g := <-results
		if g.res.Reason != "2" {
			t.Errorf("duplicate got run %s, want the follow-up run 2", g.res.Reason)
		}
		if g.shared {
			shared++
		}
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("runs = %d, want 2 (one running, one follow-up for three duplicates)", n)
	}
	if shared != 2 {
		t.Errorf("shared = %d, want 2 (the follow-up's starter ran it)", shared)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.lanes) != 0 {
		t.Errorf("lanes left behind: %d", len(k.lanes))
	}
}

func TestKeyedNeverRunsOnePrincipalTwiceAtOnce(t *testing.T) {
	t.Parallel()
	k := newKeyed()
	rng := rand.New(rand.NewPCG(1, 2))
	const keys = 5
	var active [keys]atomic.Int32
	var overlap, parallel atomic.Int32
	var running atomic.Int32
	var wg sync.WaitGroup
	for range 400 {
		i := rng.IntN(keys)
		cmd := []Command{CommandReconcile, CommandGrant}[rng.IntN(2)]
		wg.Go(func() {
			tg := Target{Principal: fmt.Sprint("principal-", i), Command: cmd}
			_, _, err := k.Do(context.Background(), tg, func(context.Context) (Result, error) {
				if active[i].Add(1) > 1 {
					overlap.Add(1)
				}
				if running.Add(1) > 1 {
					parallel.Add(1)
				}
				time.Sleep(50 * time.Microsecond)
				running.Add(-1)
				active[i].Add(-1)
				return Result{}, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := overlap.Load(); n != 0 {
		t.Errorf("%d runs overlapped another run of the same principal", n)
	}
	if parallel.Load() == 0 {
		t.Error("different principals never ran in parallel")
	}
}

func TestKeyedQueuesDifferentCommandsInOrder(t *testing.T) {
	t.Parallel()
	k := newKeyed()
	oid := "principal-1"
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []Command
	fn := func(cmd Command) func(context.Context) (Result, error) {
		return func(context.Context) (Result, error) {
			mu.Lock()
			order = append(order, cmd)
			mu.Unlock()
			if cmd == CommandReconcile {
				<-gate
			}
			return Result{Command: cmd}, nil
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { k.Do(context.Background(), Target{Principal: oid}, fn(CommandReconcile)) })
	waitRunning := func() {
		for {
			mu.Lock()
			n := len(order)
			mu.Unlock()
			if n > 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitRunning()
	wg.Go(func() { k.Do(context.Background(), Target{Principal: oid, Command: CommandRevoke}, fn(CommandRevoke)) })
	waitQueued(t, k, oid, 1, 0)
	wg.Go(func() { k.Do(context.Background(), Target{Principal: oid, Command: CommandGrant}, fn(CommandGrant)) })
	waitQueued(t, k, oid, 2, 0)
	close(gate)
	wg.Wait()
	want := []Command{CommandReconcile, CommandRevoke, CommandGrant}
	if len(order) != 3 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Errorf("order = %v, want %v", order, want)
	}
}

func TestKeyedFollowerRunsAgainWhenItsStarterWasCancelled(t *testing.T) {
	t.Parallel()
	k := newKeyed()
	tg := Target{Principal: "principal-1"}
	gate := make(chan struct{})
	var runs atomic.Int32
	fn := func(ctx context.Context) (Result, error) {
		if runs.Add(1) == 1 {
			<-gate
		}
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		return Result{Reason: "ok"}, nil
	}
	go k.Do(context.Background(), tg, fn)
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	starter := make(chan error, 1)
	go func() { _, _, err := k.Do(cancelled, tg, fn); starter <- err }()
	waitQueued(t, k, tg.Principal, 1, 0)
	follower := make(chan Result, 1)
	go func() { r, _, _ := k.Do(context.Background(), tg, fn); follower <- r }()
	waitQueued(t, k, tg.Principal, 1, 1)
	cancel()
	close(gate)
	if err := <-starter; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled starter got %v, want context.Canceled", err)
	}
	if r := <-follower; r.Reason != "ok" {
		t.Errorf("follower got %+v, want its own successful run", r)
	}
}
