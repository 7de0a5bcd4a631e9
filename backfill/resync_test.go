package backfill

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
)

func TestResyncerCoalescesTriggers(t *testing.T) {
	r := NewResyncer(0, Options{Clock: clk.NewFake()})
	started := make(chan int32)
	release := make(chan struct{})
	var runs, active, peak atomic.Int32
	r.resync = func(context.Context) (Summary, error) {
		n := runs.Add(1)
		if a := active.Add(1); a > peak.Load() {
			peak.Store(a)
		}
		started <- n
		if n == 1 {
			<-release
		}
		active.Add(-1)
		return Summary{}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()

	r.Trigger()
	if n := <-started; n != 1 {
		t.Fatalf("first run is #%d", n)
	}
	var wg sync.WaitGroup
	for range 5 { // lifecycle events arriving from several goroutines while one runs
		wg.Go(r.Trigger)
	}
	wg.Wait()
	close(release)
	if n := <-started; n != 2 {
		t.Fatalf("follow-up run is #%d", n)
	}
	cancel()
	<-done
	if got, p := runs.Load(), peak.Load(); got != 2 || p != 1 {
		t.Errorf("%d runs with at most %d at once; want 2 runs (one follow-up) and never 2 at once", got, p)
	}
}

func TestResyncerRunsOnSchedule(t *testing.T) {
	clock := clk.NewFake()
	r := NewResyncer(time.Hour, Options{Clock: clock})
	ran := make(chan struct{})
	r.resync = func(context.Context) (Summary, error) { ran <- struct{}{}; return Summary{}, nil }
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.Run(ctx)
	for range 2 {
		clock.WaitForWaiters(t, 1)
		clock.Advance(59 * time.Minute)
		select {
		case <-ran:
			t.Fatalf("resync ran before the interval")
		default:
		}
		clock.Advance(time.Minute)
		<-ran
	}
}

func TestResyncerAlwaysBrakesAndLogsSummary(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	var logs wt.LogSink
	o := bfOptions(dir, acs, clock)
	o.MaxRevokes, o.Force = 1, true // a resync ignores Force
	o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	resyncOnce(t, o, &logs, "resync braked")
	if acs.Calls("Delete") != 0 || acs.Calls("Put") != 0 {
		t.Errorf("puts=%d deletes=%d; a braked resync applies nothing", acs.Calls("Put"), acs.Calls("Delete"))
	}
	for _, want := range []string{`"withheld_revokes":4`, `"candidates":8`, `"why":"trigger"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("summary log lacks %s:\n%s", want, logs.String())
		}
	}
}

// resyncOnce runs a Resyncer on o, triggers one resync and stops it once logs holds want.
func resyncOnce(t *testing.T, o Options, logs *wt.LogSink, want string) {
	t.Helper()
	r := NewResyncer(0, o)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Trigger()
	clk.WaitUntil(t, "a log line "+strconv.Quote(want), func() bool { return strings.Contains(logs.String(), want) })
	cancel()
	<-done
}
