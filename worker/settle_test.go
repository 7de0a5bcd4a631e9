package worker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
)

// Tests of the settlement table: how each kind of message and failure leaves the worker.

func TestWorkerSettlesByTheDesignTable(t *testing.T) {
	t.Parallel()
	eligible, disabled, unassigned := rtTeamsUser(1), rtTeamsUser(2), rtTeamsUser(3)
	disabled.AccountEnabled = false
	tests := []struct {
		name        string
		body        []byte
		wantOutcome Outcome
		wantReason  string
		wantGranted map[string]bool
	}{
		{"onboarding grants an eligible user", rtUserNote(eligible.ID), OutcomeCompleted, "",
			map[string]bool{eligible.ID: true}},
		{"offboarding revokes a disabled user", rtUserNote(disabled.ID), OutcomeCompleted, "",
			map[string]bool{disabled.ID: false}},
		{"a principal the directory does not know is a no-op", rtUserNote(rtOID(99)), OutcomeCompleted, "",
			map[string]bool{rtOID(99): false}},
		{"forged clientState is dead-lettered as untrusted", readFixture(t, "forged_clientstate.json"),
			OutcomeDeadLettered, ReasonUntrusted, map[string]bool{fxUserA: false}},
		{"malformed JSON is dead-lettered", []byte(`{"value":[`), OutcomeDeadLettered, ReasonMalformed, nil},
		{"an unknown shape is dead-lettered", []byte(`{"hello":"world"}`), OutcomeDeadLettered, ReasonUnknownShape, nil},
		{"a bad principal in a command is dead-lettered", rtCommand("reconcile", "not a principal"),
			OutcomeDeadLettered, ReasonBadPrincipal, nil},
		{"one rejected item does not poison the others", []byte(strings.Replace(string(rtUserNote(eligible.ID, unassigned.ID)),
			fxClientState, "forged", 1)), OutcomeCompleted, "", map[string]bool{eligible.ID: false, unassigned.ID: true}},
		{"a reachability probe completes and acts on nothing", readFixture(t, "eventhubs_probe.json"), OutcomeCompleted, "", nil},
		{"a lifecycle event without a handler completes", readFixture(t, "graph_lifecycle.json"), OutcomeCompleted, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newRTEnv(eligible, disabled, unassigned)
			e.acs.Set(Assignment{ObjectID: disabled.ID, PrincipalType: PrincipalUser, ClientIDs: []string{rtApp}})
			src := NewMemorySource([][]byte{tt.body}, FileOptions{})
			obs := &recordingObserver{}
			runToEnd(t, e.worker(t, src, Options{Observer: obs}))

			got := obs.settled()
			if len(got) != 1 || got[0].outcome != tt.wantOutcome || (tt.wantReason != "" && got[0].reason != tt.wantReason) {
				t.Fatalf("settled = %+v, want one %s %q\nlogs:\n%s", got, tt.wantOutcome, tt.wantReason, e.logs)
			}
			dead := src.DeadLetters()
			if wantDead := tt.wantOutcome == OutcomeDeadLettered; (len(dead) == 1) != wantDead {
				t.Fatalf("dead letters = %+v, want dead-lettered %v", dead, wantDead)
			}
			for oid, want := range tt.wantGranted {
				if got := e.granted(oid); got != want {
					t.Errorf("granted(%s) = %v, want %v", oid, got, want)
				}
			}
			if strings.Contains(e.logs.String(), fxClientState) {
				t.Error("the logs hold the clientState secret")
			}
		})
	}
}

func TestWorkerDeadLettersAtMaxDeliveryCountForAPersistentTemporaryFault(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(1)
	e := newRTEnv(u)
	for range 3 {
		e.acs.FailNext("Get", u.ID, errUnavailable())
	}
	src := NewMemorySource([][]byte{rtUserNote(u.ID)}, FileOptions{MaxDeliveryCount: 3, Backoff: noBackoff})
	runToEnd(t, e.worker(t, src, Options{Retries: -1}))
	dead := src.DeadLetters()
	if len(dead) != 1 || dead[0].Reason != ReasonMaxDeliveryCount {
		t.Fatalf("dead letters = %+v, want one %s", dead, ReasonMaxDeliveryCount)
	}
}

func TestWorkerLifecycleHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		errs []error
		want []Outcome
	}{
		{"handled", nil, []Outcome{OutcomeCompleted}},
		{"temporary failure is abandoned, then handled", []error{errUnavailable()}, []Outcome{OutcomeAbandoned, OutcomeCompleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newRTEnv()
			h := &fakeLifecycle{errs: tt.errs}
			obs := &recordingObserver{}
			src := NewMemorySource([][]byte{readFixture(t, "graph_lifecycle.json")}, FileOptions{Backoff: noBackoff})
			runToEnd(t, e.worker(t, src, Options{Concurrency: 1, Lifecycle: h, Observer: obs}))
			if got := obs.outcomes(); !slices.Equal(got, tt.want) {
				t.Errorf("outcomes = %v, want %v", got, tt.want)
			}
			dec, err := Decode(readFixture(t, "graph_lifecycle.json"), nil, fxTrust)
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
	seen []LifecycleEvent
}

func (h *fakeLifecycle) HandleLifecycle(_ context.Context, ev LifecycleEvent) error {
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

func (h *fakeLifecycle) events() []LifecycleEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

func TestWorkerDeadLettersARejectedPrincipalOnlyWhenNothingElseNeedsARetry(t *testing.T) {
	t.Parallel()
	refused, flaky := rtTeamsUser(1), rtTeamsUser(2)
	tests := []struct {
		name string
		body []byte
		want []Outcome
	}{
		{"alone, a principal ACS refuses is dead-lettered", rtUserNote(refused.ID),
			[]Outcome{OutcomeDeadLettered}},
		{"next to a principal that needs a retry, the message is abandoned, then completed",
			rtUserNote(refused.ID, flaky.ID), []Outcome{OutcomeAbandoned, OutcomeCompleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newRTEnv(refused, flaky)
			for range 4 {
				e.acs.FailNext("Put", refused.ID, errBadRequest())
			}
			e.acs.FailNext("Get", flaky.ID, errUnavailable())
			src := NewMemorySource([][]byte{tt.body}, FileOptions{Backoff: noBackoff})
			obs := &recordingObserver{}
			runToEnd(t, e.worker(t, src, Options{Concurrency: 1, Retries: -1, Observer: obs}))
			if got := obs.outcomes(); !slices.Equal(got, tt.want) {
				t.Fatalf("outcomes = %v, want %v\n%s", got, tt.want, e.logs)
			}
			if last := obs.settled()[len(tt.want)-1]; last.outcome == OutcomeDeadLettered && last.reason != ReasonRejected {
				t.Errorf("dead-letter reason = %q, want %q", last.reason, ReasonRejected)
			}
		})
	}
}

// plainLifecycle fails with an error that says nothing about how to handle it, once.
type plainLifecycle struct{ failed bool }

func (h *plainLifecycle) HandleLifecycle(context.Context, LifecycleEvent) error {
	if h.failed {
		return nil
	}
	h.failed = true
	return errors.New("subscription keeper: unexpected state")
}

func TestWorkerTreatsUnclassifiedErrorsAsTemporaryAndCountsThem(t *testing.T) {
	t.Parallel()
	e := newRTEnv()
	src := NewMemorySource([][]byte{readFixture(t, "eg_lifecycle_reauth.json")}, FileOptions{Backoff: noBackoff})
	obs := &recordingObserver{}
	w := e.worker(t, src, Options{Concurrency: 1, Lifecycle: &plainLifecycle{}, Observer: obs})
	runToEnd(t, w)
	if got, want := obs.outcomes(), []Outcome{OutcomeAbandoned, OutcomeCompleted}; !slices.Equal(got, want) {
		t.Fatalf("outcomes = %v, want %v", got, want)
	}
	if n := testutil.ToFloat64(w.metrics.unclassified); n != 1 {
		t.Errorf("tpe_unclassified_errors_total = %v, want 1", n)
	}
	if !strings.Contains(e.logs.String(), `"level":"ERROR","msg":"message abandoned on an unclassified error"`) {
		t.Errorf("the unclassified error was not logged as an error:\n%s", e.logs)
	}
}

// Every record the worker writes about a message names each key once, also when several
// items were rejected: the rejections are one list, not a repeated key.
func TestWorkerSettlementRecordListsRejectionsOnce(t *testing.T) {
	t.Parallel()
	good := rtTeamsUser(1)
	e := newRTEnv(good)
	forged := strings.Replace(string(rtUserNote(rtOID(2), rtOID(3), good.ID)), fxClientState, "forged", 2)
	runToEnd(t, e.worker(t, NewMemorySource([][]byte{[]byte(forged)}, FileOptions{}), Options{}))
	var settled map[string]any
	for line := range strings.Lines(e.logs.String()) {
		if dup := repeatedKeys(t, line); len(dup) > 0 {
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
		t.Fatalf("settlement record %v: want a list of the 2 rejected items\nlogs:\n%s", settled, e.logs)
	}
	for _, r := range rejected {
		if m, _ := r.(map[string]any); m[logkey.Reason] != ReasonUntrusted || m[logkey.Description] == "" {
			t.Errorf("rejected item %v, want reason %s and a description", r, ReasonUntrusted)
		}
	}
}
