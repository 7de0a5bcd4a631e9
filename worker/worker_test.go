package worker_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The audit record carries the message's keys (from the worker's per-message logger) and
// the result's, each exactly once: a JSON object with a repeated key is read differently by
// different tools.
func TestWorkerAuditsEveryReconcileOnceWithTheMessageID(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	e := wt.NewEnv(u)
	wt.RunToEnd(t, e.Worker(t, worker.NewMemorySource([][]byte{wt.UserNote(u.ID)}, worker.FileOptions{}), worker.Options{}))
	lines := e.Logs.AuditLines(t)
	if len(lines) != 1 {
		t.Fatalf("%d audit records, want 1:\n%s", len(lines), e.Logs)
	}
	if dup := wt.RepeatedKeys(t, lines[0]); len(dup) > 0 {
		t.Errorf("audit record repeats %v: %s", dup, lines[0])
	}
	var audit map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &audit); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{logkey.MessageID: "msg-1", logkey.DeliveryCount: 1.0, logkey.ObjectID: u.ID,
		logkey.Action: "grant", logkey.Coalesced: false}
	for k, v := range want {
		if got, ok := audit[k]; !ok || got != v {
			t.Errorf("audit %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

func TestWorkerReversedNotificationsConverge(t *testing.T) {
	t.Parallel()
	// The user was enabled, then disabled; the notifications arrive in reverse order and
	// twice. Level-triggered reconciles end where the directory is now: no access.
	u := wt.TeamsUser(1)
	e := wt.NewEnv(u)
	u.AccountEnabled = false
	e.Dir.PutUser(u)
	bodies := [][]byte{wt.UserNote(u.ID), wt.UserNote(u.ID), worker.EncodeCommand(worker.CommandReconcile, u.ID, "")}
	wt.RunToEnd(t, e.Worker(t, worker.NewMemorySource(bodies, worker.FileOptions{}), worker.Options{Concurrency: 3}))
	if e.Granted(u.ID) {
		t.Fatal("a disabled user kept access")
	}
	if e.ACS.Writes() != 0 {
		t.Errorf("writes = %d, want 0: nothing to change", e.ACS.Writes())
	}
}

func TestWorkerAbandonsThrottledMessageAndSucceedsOnRedelivery(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	e := wt.NewEnv(u)
	// A burst of 429s longer than the in-process retries (2 retries → 3 attempts).
	for range 3 {
		e.ACS.FailNext("Get", u.ID, wt.ErrThrottled(time.Second))
	}
	src := worker.NewMemorySource([][]byte{wt.UserNote(u.ID)}, worker.FileOptions{Backoff: wt.NoBackoff})
	obs := &wt.Observer{}
	w := e.Worker(t, src, worker.Options{Concurrency: 1, Clock: clk.NewInstant(), Observer: obs})
	wt.RunToEnd(t, w)

	if !e.Granted(u.ID) {
		t.Fatal("user not granted after redelivery")
	}
	got := obs.Outcomes()
	want := []worker.Outcome{worker.OutcomeAbandoned, worker.OutcomeCompleted}
	if !slices.Equal(got, want) {
		t.Fatalf("outcomes = %v, want %v", got, want)
	}
	if n := len(src.DeadLetters()); n != 0 {
		t.Errorf("dead letters = %d, want 0", n)
	}
	if got := obs.DeliveryCounts(); !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("delivery counts = %v, want [1 2]", got)
	}
}

func TestWorkerExpandsGroupsWithoutDelta(t *testing.T) {
	t.Parallel()
	a, b := wt.TeamsUser(1), wt.TeamsUser(2)
	e := wt.NewEnv(a, b)
	e.Dir.SetGroup(fxGroup, a.ID, b.ID)
	src := worker.NewMemorySource([][]byte{readFixture(t, "eg_group_updated_nodelta.json")}, worker.FileOptions{})
	wt.RunToEnd(t, e.Worker(t, src, worker.Options{}))
	if !e.Granted(a.ID) || !e.Granted(b.ID) {
		t.Fatalf("group members not granted: %v %v\n%s", e.Granted(a.ID), e.Granted(b.ID), e.Logs)
	}
}

func TestWorkerStatsCountOutcomesAndActions(t *testing.T) {
	t.Parallel()
	a, b := wt.TeamsUser(1), wt.TeamsUser(2)
	e := wt.NewEnv(a, b)
	e.ACS.Set(worker.Assignment{ObjectID: b.ID, PrincipalType: worker.PrincipalUser, ClientIDs: []string{wt.App}})
	w := e.Worker(t, worker.NewMemorySource([][]byte{wt.UserNote(a.ID, b.ID), []byte("nope")}, worker.FileOptions{}), worker.Options{})
	wt.RunToEnd(t, w)
	s := w.Stats()
	if s.Messages[worker.OutcomeCompleted] != 1 || s.Messages[worker.OutcomeDeadLettered] != 1 {
		t.Errorf("messages = %v, want 1 completed, 1 dead-lettered", s.Messages)
	}
	if s.Reconciles[worker.ActionGrant] != 1 || s.Reconciles[worker.ActionNoop] != 1 || s.Errors != 0 {
		t.Errorf("reconciles = %v errors %d, want 1 grant, 1 noop, 0 errors", s.Reconciles, s.Errors)
	}
}

func TestNewRejectsMissingCollaborators(t *testing.T) {
	t.Parallel()
	e := wt.NewEnv()
	src := worker.NewMemorySource(nil, worker.FileOptions{})
	for name, build := range map[string]func() (*worker.Worker, error){
		"source":     func() (*worker.Worker, error) { return worker.New(nil, e.Rec, e.Dir, worker.Options{}) },
		"reconciler": func() (*worker.Worker, error) { return worker.New(src, nil, e.Dir, worker.Options{}) },
		"directory":  func() (*worker.Worker, error) { return worker.New(src, e.Rec, nil, worker.Options{}) },
	} {
		if _, err := build(); err == nil {
			t.Errorf("New without a %s: no error", name)
		}
	}
}

func TestWorkerCoalescesDuplicateMessages(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	e := wt.NewEnv(u)
	g := e.Gated()
	bodies := [][]byte{wt.UserNote(u.ID), wt.UserNote(u.ID), wt.UserNote(u.ID), wt.UserNote(u.ID)}
	w := e.Worker(t, worker.NewMemorySource(bodies, worker.FileOptions{}), worker.Options{Concurrency: 4})
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	<-g.Entered                 // the first reconcile is running...
	w.WaitQueued(t, u.ID, 1, 2) // ...and three duplicates share one follow-up
	close(g.Gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if n := e.Dir.Calls("User"); n != 3 {
		t.Errorf("directory reads = %d, want 3 (one run, the read verifying its grant, one coalesced follow-up)", n)
	}
	s := w.Stats()
	if s.Coalesced != 2 || s.Messages[worker.OutcomeCompleted] != 4 {
		t.Errorf("stats = %+v, want 2 coalesced, 4 completed", s)
	}
	if e.ACS.Writes() != 1 || !e.Granted(u.ID) {
		t.Errorf("writes = %d, granted = %v; want one grant", e.ACS.Writes(), e.Granted(u.ID))
	}
}

func TestWorkerIsNotReadyUntilRunning(t *testing.T) {
	t.Parallel()
	e := wt.NewEnv()
	b := wt.NewBroker(time.Minute)
	w := e.Worker(t, b.Source(), worker.Options{})
	if w.Ready() == nil {
		t.Error("Ready() = nil before Run")
	}
	stop := wt.RunInBackground(t, w)
	clk.WaitUntil(t, "the worker is ready", func() bool { return w.Ready() == nil })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if w.Ready() == nil {
		t.Error("Ready() = nil after Run returned")
	}
}
