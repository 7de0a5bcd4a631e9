package workertest

import (
	"bytes"
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

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The fixtures' tenant, subscription and clientState, and our application's client id.
const (
	TenantID       = "8f2c1c55-7b7e-4d0a-9a39-3c7f1b2d4e61"
	ClientState    = "s3cr3t-client-state-do-not-log"
	SubscriptionID = "d6f1b7a2-4c3e-4f5a-8b9c-0e1d2f3a4b5c"
	App            = "11111111-2222-4333-8444-555555555555"
)

// Trust is the fixtures' trust: notifications must carry TenantID and ClientState.
var Trust = worker.Trust{TenantID: TenantID, ClientState: ClientState}

// Policy grants App.
var Policy = worker.Policy{ClientIDs: []string{App}}

// OID is the i-th fixture object id.
func OID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// TeamsUser is an enabled member with Teams enabled: eligible for a user assignment.
func TeamsUser(i int) worker.User {
	return worker.User{ID: OID(i), UPN: fmt.Sprintf("user%d@example.com", i), AccountEnabled: true, UserType: "Member",
		Plans: []worker.AssignedPlan{{ServicePlanID: worker.TeamsPlanIDs[0], CapabilityStatus: "Enabled", Service: "TeamspaceAPI"}}}
}

// Note is the fixtures' notification that user oid was updated, for a test to change
// before encoding it (worker.EncodeNotifications, worker.EncodeCloudEvent).
func Note(oid string) worker.Notification {
	return worker.Notification{SubscriptionID: SubscriptionID, ChangeType: "updated", ID: oid,
		ClientState: ClientState, TenantID: TenantID}
}

// Forged is Note with a clientState that is not the fixtures': the worker must refuse it.
func Forged(oid string) worker.Notification {
	n := Note(oid)
	n.ClientState = "forged-client-state"
	return n
}

// UserNote is a Graph webhook collection saying the users were updated.
func UserNote(oids ...string) []byte {
	ns := make([]worker.Notification, len(oids))
	for i, oid := range oids {
		ns[i] = Note(oid)
	}
	return worker.EncodeNotifications(ns...)
}

// Env is a worker's collaborators in memory: directory, ACS, Reconciler, logs and metrics.
type Env struct {
	Dir  *Directory
	ACS  *Assignments
	Rec  *worker.Reconciler
	Logs *LogSink
	Reg  *prometheus.Registry
}

// NewEnv returns an Env whose directory holds users, with Policy.
func NewEnv(users ...worker.User) *Env {
	e := &Env{Dir: NewDirectory(users...), ACS: NewAssignments(), Logs: &LogSink{}, Reg: prometheus.NewRegistry()}
	e.Rec = worker.NewReconciler(e.Dir, e.ACS, Policy, worker.ReconcilerOptions{})
	return e
}

// Worker builds a Worker over src with the fixtures' trust, logging to e.Logs.
func (e *Env) Worker(t testing.TB, src worker.Source, o worker.Options) *worker.Worker {
	t.Helper()
	o.Trust.TenantID, o.Trust.ClientState = Trust.TenantID, Trust.ClientState
	if o.Logger == nil {
		o.Logger = e.Logger()
	}
	if o.Registerer == nil {
		o.Registerer = e.Reg
	}
	w, err := worker.New(src, e.Rec, e.Dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Logger writes JSON records at debug level to e.Logs.
func (e *Env) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Granted reports whether oid's assignment holds App.
func (e *Env) Granted(oid string) bool {
	a, ok := e.ACS.Lookup(oid)
	return ok && slices.Contains(a.ClientIDs, App)
}

// GatedDirectory holds every User read until Gate is closed (or the read's ctx ends), to
// make a reconcile slow at a moment the test chooses.
type GatedDirectory struct {
	*Directory
	Gate    chan struct{}
	Entered chan string // receives each principal as its read starts (buffered)
}

// Gated makes e's reconciler read users through a gate, which the test closes.
func (e *Env) Gated() *GatedDirectory {
	g := &GatedDirectory{Directory: e.Dir, Gate: make(chan struct{}), Entered: make(chan string, 100)}
	e.Rec = worker.NewReconciler(g, e.ACS, Policy, worker.ReconcilerOptions{})
	return g
}

func (g *GatedDirectory) User(ctx context.Context, idOrUPN string) (worker.User, error) {
	g.Entered <- idOrUPN
	select {
	case <-g.Gate:
	case <-ctx.Done():
		return worker.User{}, ctx.Err()
	}
	return g.Directory.User(ctx, idOrUPN)
}

// RunInBackground runs w until stop is called; stop returns Run's error (and may be called
// again).
func RunInBackground(t testing.TB, w *worker.Worker) (stop func() error) {
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

// RunToEnd runs w over a finite source and fails the test if Run fails or does not end
// within 20 s.
func RunToEnd(t testing.TB, w *worker.Worker) {
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

// NoBackoff is a backoff (a probe's, a redelivery's) that does not wait.
func NoBackoff(int) time.Duration { return 0 }

// LogSink collects output written from many goroutines (a logger's records, a progress
// meter's lines), keeping each Write apart too.
type LogSink struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes []string
}

func (l *LogSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, string(p))
	return l.b.Write(p)
}

// Writes returns what each Write call wrote, in order.
func (l *LogSink) Writes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.writes)
}

func (l *LogSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Observer records settlements in order.
type Observer struct {
	mu   sync.Mutex
	sets []Settled
}

var _ worker.Observer = (*Observer)(nil)

// Settled is one settlement.
type Settled struct {
	ID      string
	Count   uint32
	Outcome worker.Outcome
	Reason  string
}

func (o *Observer) Reconciled(*worker.Delivery, worker.Target, worker.Result, error) {}

func (o *Observer) Settled(d *worker.Delivery, outcome worker.Outcome, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sets = append(o.sets, Settled{d.MessageID, d.DeliveryCount, outcome, reason})
}

// Settlements returns the settlements so far.
func (o *Observer) Settlements() []Settled {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.sets)
}

// Outcomes returns the settlements' outcomes, in order.
func (o *Observer) Outcomes() []worker.Outcome {
	var out []worker.Outcome
	for _, s := range o.Settlements() {
		out = append(out, s.Outcome)
	}
	return out
}

// DeliveryCounts returns the settled deliveries' counts, in order.
func (o *Observer) DeliveryCounts() []uint32 {
	var out []uint32
	for _, s := range o.Settlements() {
		out = append(out, s.Count)
	}
	return out
}

// AuditLines returns the JSON records whose msg is "audit", as written, in order. Every
// line must be JSON.
func (l *LogSink) AuditLines(t testing.TB) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(l.String()) {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec.Msg == "audit" {
			out = append(out, line)
		}
	}
	return out
}

// Audits returns the audit records, decoded, in order.
func (l *LogSink) Audits(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range l.AuditLines(t) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit record is not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}
