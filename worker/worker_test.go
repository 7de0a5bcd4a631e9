package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Runtime test helpers. Notifications use the fixtures' tenant and clientState (fxTrust).

// rtApp is our application's client id in the runtime tests.
const rtApp = "11111111-2222-4333-8444-555555555555"

var rtPolicy = Policy{ClientIDs: []string{rtApp}}

func rtOID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// rtTeamsUser is an enabled member with Teams enabled: eligible for a user assignment.
func rtTeamsUser(i int) User {
	return User{ID: rtOID(i), UPN: fmt.Sprintf("user%d@example.com", i), AccountEnabled: true, UserType: "Member",
		Plans: []AssignedPlan{{ServicePlanID: TeamsPlanIDs[0], CapabilityStatus: "Enabled", Service: "TeamspaceAPI"}}}
}

// rtUserNote is a Graph webhook collection saying the users were updated.
func rtUserNote(oids ...string) []byte {
	items := make([]string, len(oids))
	for i, oid := range oids {
		items[i] = fmt.Sprintf(`{"subscriptionId":%q,"changeType":"updated","resource":"Users/%s",`+
			`"resourceData":{"@odata.type":"#Microsoft.Graph.User","id":%q,"organizationId":%q},`+
			`"clientState":%q,"tenantId":%q}`, fxSub, oid, oid, fxTenant, fxClientState, fxTenant)
	}
	return []byte(`{"value":[` + strings.Join(items, ",") + `]}`)
}

func rtCommand(cmd, principal string) []byte {
	return fmt.Appendf(nil, `{"command":%q,"principal":%q}`, cmd, principal)
}

// rtLogBuffer is a log sink safe for the worker's goroutines.
type rtLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *rtLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *rtLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rtEnv is a directory, an ACS store and a reconciler over them.
type rtEnv struct {
	dir  *fakeDirectory
	acs  *fakeAssignments
	rec  *Reconciler
	logs *rtLogBuffer
	reg  *prometheus.Registry
}

func newRTEnv(users ...User) *rtEnv {
	e := &rtEnv{dir: newFakeDirectory(users...), acs: newFakeAssignments(), logs: &rtLogBuffer{},
		reg: prometheus.NewRegistry()}
	e.rec = NewReconciler(e.dir, e.acs, rtPolicy, ReconcilerOptions{})
	return e
}

// worker builds a Worker over src with the fixtures' trust, logging to e.logs.
func (e *rtEnv) worker(t testing.TB, src Source, o Options) *Worker {
	t.Helper()
	o.Trust = fxTrust
	if o.Logger == nil {
		o.Logger = e.logger()
	}
	if o.Registerer == nil {
		o.Registerer = e.reg
	}
	w, err := New(src, e.rec, e.dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// logger writes JSON records at every level to e.logs.
func (e *rtEnv) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// granted reports whether oid's assignment holds our client id.
func (e *rtEnv) granted(oid string) bool {
	a, ok := e.acs.Lookup(oid)
	return ok && slices.Contains(a.ClientIDs, rtApp)
}

// runToEnd runs w over a finite source and fails the test if it does not end in time.
func runToEnd(t testing.TB, w *Worker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run did not end before the test's deadline")
	}
}

// rtInstantClock fires every wait at once, so retry and backoff timing costs nothing.
type rtInstantClock struct{}

func (rtInstantClock) Now() time.Time { return time.Now() }
func (rtInstantClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

func noBackoff(int) time.Duration { return 0 }

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

func TestWorkerAuditsEveryReconcileWithTheMessageID(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(1)
	e := newRTEnv(u)
	runToEnd(t, e.worker(t, NewMemorySource([][]byte{rtUserNote(u.ID)}, FileOptions{}), Options{}))
	var audit string
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"audit"`) {
			audit = line
		}
	}
	for _, want := range []string{`"message_id":"msg-1"`, `"object_id":"` + u.ID + `"`, `"action":"grant"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit record %q lacks %s", audit, want)
		}
	}
}

func TestWorkerReversedNotificationsConverge(t *testing.T) {
	t.Parallel()
	// The user was enabled, then disabled; the notifications arrive in reverse order and
	// twice. Level-triggered reconciles end where the directory is now: no access.
	u := rtTeamsUser(1)
	e := newRTEnv(u)
	u.AccountEnabled = false
	e.dir.PutUser(u)
	bodies := [][]byte{rtUserNote(u.ID), rtUserNote(u.ID), rtCommand("reconcile", u.ID)}
	runToEnd(t, e.worker(t, NewMemorySource(bodies, FileOptions{}), Options{Concurrency: 3}))
	if e.granted(u.ID) {
		t.Fatal("a disabled user kept access")
	}
	if e.acs.Writes() != 0 {
		t.Errorf("writes = %d, want 0: nothing to change", e.acs.Writes())
	}
}

func TestWorkerAbandonsThrottledMessageAndSucceedsOnRedelivery(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(1)
	e := newRTEnv(u)
	// A burst of 429s longer than the in-process retries (2 retries → 3 attempts).
	for range 3 {
		e.acs.FailNext("Get", u.ID, errThrottled(time.Second))
	}
	src := NewMemorySource([][]byte{rtUserNote(u.ID)}, FileOptions{Backoff: noBackoff})
	obs := &recordingObserver{}
	w := e.worker(t, src, Options{Concurrency: 1, Clock: rtInstantClock{}, Observer: obs})
	runToEnd(t, w)

	if !e.granted(u.ID) {
		t.Fatal("user not granted after redelivery")
	}
	got := obs.outcomes()
	want := []Outcome{OutcomeAbandoned, OutcomeCompleted}
	if !slices.Equal(got, want) {
		t.Fatalf("outcomes = %v, want %v", got, want)
	}
	if n := len(src.DeadLetters()); n != 0 {
		t.Errorf("dead letters = %d, want 0", n)
	}
	if got := obs.deliveryCounts(); !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("delivery counts = %v, want [1 2]", got)
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

func TestWorkerExpandsGroupsWithoutDelta(t *testing.T) {
	t.Parallel()
	a, b := rtTeamsUser(1), rtTeamsUser(2)
	e := newRTEnv(a, b)
	e.dir.SetGroup(fxGroup, a.ID, b.ID)
	src := NewMemorySource([][]byte{readFixture(t, "eg_group_updated_nodelta.json")}, FileOptions{})
	runToEnd(t, e.worker(t, src, Options{}))
	if !e.granted(a.ID) || !e.granted(b.ID) {
		t.Fatalf("group members not granted: %v %v\n%s", e.granted(a.ID), e.granted(b.ID), e.logs)
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

func TestWorkerStatsCountOutcomesAndActions(t *testing.T) {
	t.Parallel()
	a, b := rtTeamsUser(1), rtTeamsUser(2)
	e := newRTEnv(a, b)
	e.acs.Set(Assignment{ObjectID: b.ID, PrincipalType: PrincipalUser, ClientIDs: []string{rtApp}})
	w := e.worker(t, NewMemorySource([][]byte{rtUserNote(a.ID, b.ID), []byte("nope")}, FileOptions{}), Options{})
	runToEnd(t, w)
	s := w.Stats()
	if s.Messages[OutcomeCompleted] != 1 || s.Messages[OutcomeDeadLettered] != 1 {
		t.Errorf("messages = %v, want 1 completed, 1 dead-lettered", s.Messages)
	}
	if s.Reconciles[ActionGrant] != 1 || s.Reconciles[ActionNoop] != 1 || s.Errors != 0 {
		t.Errorf("reconciles = %v errors %d, want 1 grant, 1 noop, 0 errors", s.Reconciles, s.Errors)
	}
}

func TestNewRejectsMissingCollaborators(t *testing.T) {
	t.Parallel()
	e := newRTEnv()
	src := NewMemorySource(nil, FileOptions{})
	for name, build := range map[string]func() (*Worker, error){
		"source":     func() (*Worker, error) { return New(nil, e.rec, e.dir, Options{}) },
		"reconciler": func() (*Worker, error) { return New(src, nil, e.dir, Options{}) },
		"directory":  func() (*Worker, error) { return New(src, e.rec, nil, Options{}) },
	} {
		if _, err := build(); err == nil {
			t.Errorf("New without a %s: no error", name)
		}
	}
}

// recordingObserver records settlements in order.
type recordingObserver struct {
	mu   sync.Mutex
	sets []settledRecord
	recs int
}

type settledRecord struct {
	id      string
	count   uint32
	outcome Outcome
	reason  string
}

func (o *recordingObserver) Reconciled(*Delivery, Target, Result, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recs++
}

func (o *recordingObserver) Settled(d *Delivery, outcome Outcome, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sets = append(o.sets, settledRecord{d.MessageID, d.DeliveryCount, outcome, reason})
}

func (o *recordingObserver) settled() []settledRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.sets)
}

func (o *recordingObserver) outcomes() []Outcome {
	var out []Outcome
	for _, s := range o.settled() {
		out = append(out, s.outcome)
	}
	return out
}

func (o *recordingObserver) deliveryCounts() []uint32 {
	var out []uint32
	for _, s := range o.settled() {
		out = append(out, s.count)
	}
	return out
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

// gatedDirectory holds every User read until the gate is opened (or the read's ctx ends),
// to make a reconcile slow at a moment the test chooses.
type gatedDirectory struct {
	*fakeDirectory
	gate    chan struct{}
	entered chan string // receives each principal as its read starts (buffered)
}

// gated makes e's reconciler read users through a gate, which the test closes.
func (e *rtEnv) gated() *gatedDirectory {
	g := &gatedDirectory{fakeDirectory: e.dir, gate: make(chan struct{}), entered: make(chan string, 100)}
	e.rec = NewReconciler(g, e.acs, rtPolicy, ReconcilerOptions{})
	return g
}

func (g *gatedDirectory) User(ctx context.Context, idOrUPN string) (User, error) {
	g.entered <- idOrUPN
	select {
	case <-g.gate:
	case <-ctx.Done():
		return User{}, ctx.Err()
	}
	return g.fakeDirectory.User(ctx, idOrUPN)
}

// runInBackground runs w until stop is called; stop returns Run's error (and may be
// called again).
func runInBackground(t testing.TB, w *Worker) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			return errors.New("Run did not return after cancellation")
		}
	})
}

func TestWorkerCoalescesDuplicateMessages(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(1)
	e := newRTEnv(u)
	g := e.gated()
	bodies := [][]byte{rtUserNote(u.ID), rtUserNote(u.ID), rtUserNote(u.ID), rtUserNote(u.ID)}
	w := e.worker(t, NewMemorySource(bodies, FileOptions{}), Options{Concurrency: 4})
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	<-g.entered                        // the first reconcile is running...
	waitQueued(t, w.keyed, u.ID, 1, 2) // ...and three duplicates share one follow-up
	close(g.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if n := e.dir.Calls("User"); n != 2 {
		t.Errorf("directory reads = %d, want 2 (one run + one coalesced follow-up)", n)
	}
	s := w.Stats()
	if s.Coalesced != 2 || s.Messages[OutcomeCompleted] != 4 {
		t.Errorf("stats = %+v, want 2 coalesced, 4 completed", s)
	}
	if e.acs.Writes() != 1 || !e.granted(u.ID) {
		t.Errorf("writes = %d, granted = %v; want one grant", e.acs.Writes(), e.granted(u.ID))
	}
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

func TestWorkerIsNotReadyUntilRunning(t *testing.T) {
	t.Parallel()
	e := newRTEnv()
	b := newFakeBroker(time.Minute)
	w := e.worker(t, newServiceBusSource(b.newReceiver, ServiceBusOptions{}), Options{})
	if w.Ready() == nil {
		t.Error("Ready() = nil before Run")
	}
	stop := runInBackground(t, w)
	waitUntil(t, "the worker is ready", func() bool { return w.Ready() == nil })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if w.Ready() == nil {
		t.Error("Ready() = nil after Run returned")
	}
}
