package worker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// fanOutQueue records what the worker hands to Options.FanOut, and can fail a call.
type fanOutQueue struct {
	mu      sync.Mutex
	calls   int
	keys    []string
	targets []worker.Target
	failAt  int   // the call (1-based) that fails; 0: none
	err     error // what it fails with
}

func (q *fanOutQueue) send(_ context.Context, key string, targets []worker.Target) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if q.calls == q.failAt {
		return q.err
	}
	if len(targets) > worker.FanOutBatch {
		return errors.New("batch larger than worker.FanOutBatch")
	}
	q.keys = append(q.keys, key)
	q.targets = append(q.targets, targets...)
	return nil
}

// commands turns what was handed over into command messages, as the queue would carry them.
func (q *fanOutQueue) commands() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([][]byte, len(q.targets))
	for i, tg := range q.targets {
		out[i] = worker.EncodeCommand(tg.Command, tg.Principal, "")
	}
	return out
}

func groupEnv(t *testing.T, members int) (*wt.Env, []string) {
	t.Helper()
	users := make([]worker.User, members)
	ids := make([]string, members)
	for i := range users {
		users[i] = wt.TeamsUser(i + 1)
		ids[i] = users[i].ID
	}
	e := wt.NewEnv(users...)
	e.Dir.SetGroup(fxGroup, ids...)
	return e, ids
}

// A group notification without members@delta for a large group becomes one reconcile
// command per member on the queue: the message completes without reconciling anyone, and
// the commands, once worked, converge every member.
func TestWorkerFansOutALargeGroupToTheQueue(t *testing.T) {
	t.Parallel()
	e, ids := groupEnv(t, 250)
	q := &fanOutQueue{}
	src := worker.NewMemorySource([][]byte{readFixture(t, "eg_group_updated_nodelta.json")}, worker.FileOptions{})
	w := e.Worker(t, src, worker.Options{FanOut: q.send})
	wt.RunToEnd(t, w)

	if src.Completed() != 1 || len(src.DeadLetters()) != 0 {
		t.Fatalf("completed %d, dead-lettered %v; want the message completed", src.Completed(), src.DeadLetters())
	}
	if n := e.ACS.Calls("Get") + e.ACS.Calls("Put"); n != 0 {
		t.Errorf("the fanning message made %d ACS calls, want 0: members are reconciled from the queue", n)
	}
	got := make([]string, len(q.targets))
	for i, tg := range q.targets {
		got[i] = tg.Principal
		if tg.Command != worker.CommandReconcile {
			t.Errorf("handed over %s for %s, want reconcile", tg.Command, tg.Principal)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Fatalf("handed over %d principals, want each of the %d members once", len(got), len(ids))
	}
	if q.calls != 3 {
		t.Errorf("FanOut called %d times for 250 members, want 3 (batches of at most %d)", q.calls, worker.FanOutBatch)
	}
	for _, k := range q.keys {
		if k != q.keys[0] {
			t.Errorf("keys %q and %q differ within one group of one message", q.keys[0], k)
		}
	}
	if v := wt.Metric(t, e.Reg, "tpe_fanned_out_principals_total"); v != 250 {
		t.Errorf("tpe_fanned_out_principals_total = %v, want 250", v)
	}

	wt.RunToEnd(t, e.Worker(t, worker.NewMemorySource(q.commands(), worker.FileOptions{}), worker.Options{Concurrency: 8}))
	for _, id := range ids {
		if !e.Granted(id) {
			t.Fatalf("member %s not granted after the fanned-out commands ran", id)
		}
	}
}

// A group of at most FanOutAbove members is reconciled inside the message: handing it to
// the queue would cost more than it saves. So is any group when FanOut is not set.
func TestWorkerReconcilesASmallGroupInline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		members int
		fanOut  bool
	}{
		{"FanOutAbove members", 20, true},
		{"no FanOut", 150, false},
	} {
		e, ids := groupEnv(t, tc.members)
		q := &fanOutQueue{}
		o := worker.Options{}
		if tc.fanOut {
			o.FanOut = q.send
		}
		wt.RunToEnd(t, e.Worker(t, worker.NewMemorySource([][]byte{readFixture(t, "eg_group_updated_nodelta.json")}, worker.FileOptions{}), o))
		if q.calls != 0 {
			t.Errorf("%s: FanOut called %d times, want none", tc.name, q.calls)
		}
		for _, id := range ids {
			if !e.Granted(id) {
				t.Fatalf("%s: member %s not granted in the message", tc.name, id)
			}
		}
	}
}

// A failed hand-over is temporary: the message is abandoned (never dead-lettered, never
// completed with members missing) and the next delivery hands the group over again under
// the same key, so the queue's duplicate detection can drop what the first try sent.
func TestWorkerRetriesAFailedFanOut(t *testing.T) {
	t.Parallel()
	e, ids := groupEnv(t, 250)
	q := &fanOutQueue{failAt: 2, err: errors.New("send batch: connection reset")}
	src := worker.NewMemorySource([][]byte{readFixture(t, "eg_group_updated_nodelta.json")}, worker.FileOptions{Backoff: func(int) time.Duration { return 0 }})
	w := e.Worker(t, src, worker.Options{FanOut: q.send})
	wt.RunToEnd(t, w)
	if src.Completed() != 1 || len(src.DeadLetters()) != 0 {
		t.Fatalf("completed %d, dead-lettered %v; want completed on the second delivery", src.Completed(), src.DeadLetters())
	}
	if s := w.Stats(); s.Messages[worker.OutcomeAbandoned] != 1 {
		t.Errorf("messages = %v, want one abandon before the completion", s.Messages)
	}
	if v := wt.Metric(t, e.Reg, "tpe_unclassified_errors_total"); v != 0 {
		t.Errorf("a failed send counted as %v unclassified errors, want it taken as temporary", v)
	}
	seen := map[string]bool{}
	for _, tg := range q.targets {
		seen[tg.Principal] = true
	}
	if len(seen) != len(ids) {
		t.Errorf("%d distinct members handed over across deliveries, want %d", len(seen), len(ids))
	}
	for _, k := range q.keys {
		if k != q.keys[0] {
			t.Errorf("redelivery used key %q, the first delivery %q: duplicates would not be detected", k, q.keys[0])
		}
	}
}

// Two different notifications for the same group get different keys even when the source
// gives no message id, so duplicate detection never drops the second one's commands.
func TestWorkerFanOutKeysDifferPerNotification(t *testing.T) {
	t.Parallel()
	e, _ := groupEnv(t, 30)
	q := &fanOutQueue{}
	b := wt.NewBroker(time.Minute)
	body := readFixture(t, "eg_group_updated_nodelta.json")
	other := []byte(strings.Replace(string(body), `"id"`, `"id" `, 1)) // same group, another event
	for _, m := range [][]byte{body, body, other} {
		b.Send("", m, nil) // no message id
	}
	stop := wt.RunInBackground(t, e.Worker(t, b.Source(), worker.Options{FanOut: q.send, Concurrency: 1}))
	ok := b.WaitFor(10*time.Second, func() bool { return len(b.Completed()) == 3 })
	if err := stop(); err != nil || !ok {
		t.Fatalf("Run = %v, all three completed %v", err, ok)
	}
	if len(q.keys) != 3 || q.keys[0] != q.keys[1] || q.keys[0] == q.keys[2] {
		t.Errorf("keys = %q; want the same for a redelivered body and another for a different notification", q.keys)
	}
}
