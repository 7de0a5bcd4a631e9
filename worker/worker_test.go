package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"
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

// rtEnv is a directory, an ACS store and a reconciler over them.
type rtEnv struct {
	dir  *fakeDirectory
	acs  *fakeAssignments
	rec  *Reconciler
	logs *logSink
	reg  *prometheus.Registry
}

func newRTEnv(users ...User) *rtEnv {
	e := &rtEnv{dir: newFakeDirectory(users...), acs: newFakeAssignments(), logs: &logSink{},
		reg: prometheus.NewRegistry()}
	e.rec = NewReconciler(e.dir, e.acs, rtPolicy, ReconcilerOptions{})
	return e
}

// worker builds a Worker over src with the fixtures' trust, logging to e.logs.
func (e *rtEnv) worker(t testing.TB, src Source, o Options) *Worker {
	t.Helper()
	o.Trust.TenantID, o.Trust.ClientState = fxTrust.TenantID, fxTrust.ClientState
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

func noBackoff(int) time.Duration { return 0 }

// The audit record carries the message's keys (from the worker's per-message logger) and
// the result's, each exactly once: a JSON object with a repeated key is read differently by
// different tools.
func TestWorkerAuditsEveryReconcileOnceWithTheMessageID(t *testing.T) {
	t.Parallel()
	u := rtTeamsUser(1)
	e := newRTEnv(u)
	runToEnd(t, e.worker(t, NewMemorySource([][]byte{rtUserNote(u.ID)}, FileOptions{}), Options{}))
	lines := e.logs.auditLines(t)
	if len(lines) != 1 {
		t.Fatalf("%d audit records, want 1:\n%s", len(lines), e.logs)
	}
	if dup := repeatedKeys(t, lines[0]); len(dup) > 0 {
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
	w := e.worker(t, src, Options{Concurrency: 1, Clock: clk.NewInstant(), Observer: obs})
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

var _ Observer = (*recordingObserver)(nil)

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

	if n := e.dir.Calls("User"); n != 3 {
		t.Errorf("directory reads = %d, want 3 (one run, the read verifying its grant, one coalesced follow-up)", n)
	}
	s := w.Stats()
	if s.Coalesced != 2 || s.Messages[OutcomeCompleted] != 4 {
		t.Errorf("stats = %+v, want 2 coalesced, 4 completed", s)
	}
	if e.acs.Writes() != 1 || !e.granted(u.ID) {
		t.Errorf("writes = %d, granted = %v; want one grant", e.acs.Writes(), e.granted(u.ID))
	}
}

func TestWorkerIsNotReadyUntilRunning(t *testing.T) {
	t.Parallel()
	e := newRTEnv()
	b := newFakeBroker(time.Minute)
	w := e.worker(t, b.source(), Options{})
	if w.Ready() == nil {
		t.Error("Ready() = nil before Run")
	}
	stop := runInBackground(t, w)
	clk.WaitUntil(t, "the worker is ready", func() bool { return w.Ready() == nil })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if w.Ready() == nil {
		t.Error("Ready() = nil after Run returned")
	}
}
