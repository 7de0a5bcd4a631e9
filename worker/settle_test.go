package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Tests of the settlement table: how each kind of message and failure leaves the worker.

func TestWorkerSettlesByTheDesignTable(t *testing.T) {
	t.Parallel()
	eligible, disabled, unassigned := wt.TeamsUser(1), wt.TeamsUser(2), wt.TeamsUser(3)
	disabled.AccountEnabled = false
	tests := []struct {
		name        string
		body        []byte
		wantOutcome worker.Outcome
		wantReason  string
		wantGranted map[string]bool
	}{
		{"onboarding grants an eligible user", wt.UserNote(eligible.ID), worker.OutcomeCompleted, "",
			map[string]bool{eligible.ID: true}},
		{"offboarding revokes a disabled user", wt.UserNote(disabled.ID), worker.OutcomeCompleted, "",
			map[string]bool{disabled.ID: false}},
		{"a principal the directory does not know is a no-op", wt.UserNote(wt.OID(99)), worker.OutcomeCompleted, "",
			map[string]bool{wt.OID(99): false}},
		{"forged clientState is dead-lettered as untrusted", readFixture(t, "forged_clientstate.json"),
			worker.OutcomeDeadLettered, worker.ReasonUntrusted, map[string]bool{fxUserA: false}},
		{"malformed JSON is dead-lettered", []byte(`{"value":[`), worker.OutcomeDeadLettered, worker.ReasonMalformed, nil},
		{"an unknown shape is dead-lettered", []byte(`{"hello":"world"}`), worker.OutcomeDeadLettered, worker.ReasonUnknownShape, nil},
		{"a bad principal in a command is dead-lettered", worker.EncodeCommand(worker.CommandReconcile, "not a principal", ""),
			worker.OutcomeDeadLettered, worker.ReasonBadPrincipal, nil},
		{"one rejected item does not poison the others", worker.EncodeNotifications(wt.Forged(eligible.ID), wt.Note(unassigned.ID)), worker.OutcomeCompleted, "", map[string]bool{eligible.ID: false, unassigned.ID: true}},
		{"a reachability probe completes and acts on nothing", readFixture(t, "eventhubs_probe.json"), worker.OutcomeCompleted, "", nil},
		{"a lifecycle event without a handler completes", readFixture(t, "graph_lifecycle.json"), worker.OutcomeCompleted, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := wt.NewEnv(eligible, disabled, unassigned)
			e.ACS.Set(worker.Assignment{ObjectID: disabled.ID, PrincipalType: worker.PrincipalUser, ClientIDs: []string{wt.App}})
			src := worker.NewMemorySource([][]byte{tt.body}, worker.FileOptions{})
			obs := &wt.Observer{}
			wt.RunToEnd(t, e.Worker(t, src, worker.Options{Observer: obs}))

			got := obs.Settlements()
			if len(got) != 1 || got[0].Outcome != tt.wantOutcome || (tt.wantReason != "" && got[0].Reason != tt.wantReason) {
				t.Fatalf("settled = %+v, want one %s %q\nlogs:\n%s", got, tt.wantOutcome, tt.wantReason, e.Logs)
			}
			dead := src.DeadLetters()
			if wantDead := tt.wantOutcome == worker.OutcomeDeadLettered; (len(dead) == 1) != wantDead {
				t.Fatalf("dead letters = %+v, want dead-lettered %v", dead, wantDead)
			}
			for oid, want := range tt.wantGranted {
				if got := e.Granted(oid); got != want {
					t.Errorf("granted(%s) = %v, want %v", oid, got, want)
				}
			}
			if strings.Contains(e.Logs.String(), wt.ClientState) {
				t.Error("the logs hold the clientState secret")
			}
		})
	}
}

func TestWorkerDeadLettersAtMaxDeliveryCountForAPersistentTemporaryFault(t *testing.T) {
	t.Parallel()
	u := wt.TeamsUser(1)
	e := wt.NewEnv(u)
	for range 3 {
		e.ACS.FailNext("Get", u.ID, wt.ErrUnavailable())
	}
	src := worker.NewMemorySource([][]byte{wt.UserNote(u.ID)}, worker.FileOptions{MaxDeliveryCount: 3, Backoff: wt.NoBackoff})
	wt.RunToEnd(t, e.Worker(t, src, worker.Options{Retries: -1}))
	dead := src.DeadLetters()
	if len(dead) != 1 || dead[0].Reason != worker.ReasonMaxDeliveryCount {
		t.Fatalf("dead letters = %+v, want one %s", dead, worker.ReasonMaxDeliveryCount)
	}
}

func TestWorkerLifecycleHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		errs []error
		want []worker.Outcome
	}{
		{"handled", nil, []worker.Outcome{worker.OutcomeCompleted}},
		{"temporary failure is abandoned, then handled", []error{wt.ErrUnavailable()}, []worker.Outcome{worker.OutcomeAbandoned, worker.OutcomeCompleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := wt.NewEnv()
			h := &fakeLifecycle{errs: tt.errs}
			obs := &wt.Observer{}
			src := worker.NewMemorySource([][]byte{readFixture(t, "graph_lifecycle.json")}, worker.FileOptions{Backoff: wt.NoBackoff})
			wt.RunToEnd(t, e.Worker(t, src, worker.Options{Concurrency: 1, Lifecycle: h, Observer: obs}))
			if got := obs.Outcomes(); !slices.Equal(got, tt.want) {
				t.Errorf("outcomes = %v, want %v", got, tt.want)
			}
			dec, err := worker.Decode(readFixture(t, "graph_lifecycle.json"), nil, wt.Trust)
			if err != nil || len(dec.Lifecycle) == 0 {
				t.Fatalf("fixture: %v, %d events", err, len(dec.Lifecycle))
			}
			if got, want := len(h.events()), len(dec.Lifecycle)*len(tt.want); got != want {
				t.Errorf("handler saw %d events, want %d (every event, on every delivery)", got, want)
			}
		})
	}
}

// fakeLifecycle fails with errs in turn, then succeeds.
type fakeLifecycle struct {
	mu   sync.Mutex
	errs []error
	seen []worker.LifecycleEvent
}

func (h *fakeLifecycle) HandleLifecycle(_ context.Context, ev worker.LifecycleEvent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, ev)
	if len(h.errs) > 0 {
		err := h.errs[0]
		h.errs = h.errs[1:]
		return err
	}
	return nil
}

func (h *fakeLifecycle) events() []worker.LifecycleEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

func TestWorkerDeadLettersARejectedPrincipalOnlyWhenNothingElseNeedsARetry(t *testing.T) {
	t.Parallel()
	refused, flaky := wt.TeamsUser(1), wt.TeamsUser(2)
	tests := []struct {
		name string
		body []byte
		want []worker.Outcome
	}{
		{"alone, a principal ACS refuses is dead-lettered", wt.UserNote(refused.ID),
			[]worker.Outcome{worker.OutcomeDeadLettered}},
		{"next to a principal that needs a retry, the message is abandoned, then completed",
			wt.UserNote(refused.ID, flaky.ID), []worker.Outcome{worker.OutcomeAbandoned, worker.OutcomeCompleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := wt.NewEnv(refused, flaky)
			for range 4 {
				e.ACS.FailNext("Put", refused.ID, wt.ErrBadRequest())
			}
			e.ACS.FailNext("Get", flaky.ID, wt.ErrUnavailable())
			src := worker.NewMemorySource([][]byte{tt.body}, worker.FileOptions{Backoff: wt.NoBackoff})
			obs := &wt.Observer{}
			wt.RunToEnd(t, e.Worker(t, src, worker.Options{Concurrency: 1, Retries: -1, Observer: obs}))
			if got := obs.Outcomes(); !slices.Equal(got, tt.want) {
				t.Fatalf("outcomes = %v, want %v\n%s", got, tt.want, e.Logs)
			}
			if last := obs.Settlements()[len(tt.want)-1]; last.Outcome == worker.OutcomeDeadLettered && last.Reason != worker.ReasonRejected {
				t.Errorf("dead-letter reason = %q, want %q", last.Reason, worker.ReasonRejected)
			}
		})
	}
}

// plainLifecycle fails with an error that says nothing about how to handle it, once.
type plainLifecycle struct{ failed bool }

func (h *plainLifecycle) HandleLifecycle(context.Context, worker.LifecycleEvent) error {
	if h.failed {
		return nil
	}
	h.failed = true
	return errors.New("subscription keeper: unexpected state")
}

func TestWorkerTreatsUnclassifiedErrorsAsTemporaryAndCountsThem(t *testing.T) {
	t.Parallel()
	e := wt.NewEnv()
	src := worker.NewMemorySource([][]byte{readFixture(t, "eg_lifecycle_reauth.json")}, worker.FileOptions{Backoff: wt.NoBackoff})
	obs := &wt.Observer{}
	w := e.Worker(t, src, worker.Options{Concurrency: 1, Lifecycle: &plainLifecycle{}, Observer: obs})
	wt.RunToEnd(t, w)
	if got, want := obs.Outcomes(), []worker.Outcome{worker.OutcomeAbandoned, worker.OutcomeCompleted}; !slices.Equal(got, want) {
		t.Fatalf("outcomes = %v, want %v", got, want)
	}
	if n := wt.Metric(t, e.Reg, "tpe_unclassified_errors_total"); n != 1 {
		t.Errorf("tpe_unclassified_errors_total = %v, want 1", n)
	}
	if !strings.Contains(e.Logs.String(), `"level":"ERROR","msg":"message abandoned on an unclassified error"`) {
		t.Errorf("the unclassified error was not logged as an error:\n%s", e.Logs)
	}
}

// Every record the worker writes about a message names each key once, also when several
// items were rejected: the rejections are one list, not a repeated key.
func TestWorkerSettlementRecordListsRejectionsOnce(t *testing.T) {
	t.Parallel()
	good := wt.TeamsUser(1)
	e := wt.NewEnv(good)
	forged := worker.EncodeNotifications(wt.Forged(wt.OID(2)), wt.Forged(wt.OID(3)), wt.Note(good.ID))
	wt.RunToEnd(t, e.Worker(t, worker.NewMemorySource([][]byte{forged}, worker.FileOptions{}), worker.Options{}))
	var settled map[string]any
	for line := range strings.Lines(e.Logs.String()) {
		if dup := wt.RepeatedKeys(t, line); len(dup) > 0 {
			t.Errorf("record repeats %v: %s", dup, line)
		}
		if strings.Contains(line, "some items were rejected") {
			if err := json.Unmarshal([]byte(line), &settled); err != nil {
				t.Fatal(err)
			}
		}
	}
	rejected, _ := settled[logkey.Rejected].([]any)
	if len(rejected) != 2 {
		t.Fatalf("settlement record %v: want a list of the 2 rejected items\nlogs:\n%s", settled, e.Logs)
	}
	for _, r := range rejected {
		if m, _ := r.(map[string]any); m[logkey.Reason] != worker.ReasonUntrusted || m[logkey.Description] == "" {
			t.Errorf("rejected item %v, want reason %s and a description", r, worker.ReasonUntrusted)
		}
	}
}
