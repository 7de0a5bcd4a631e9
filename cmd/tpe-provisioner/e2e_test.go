package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/internal/oracle"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// End-to-end tests of the binary's wiring: the real acs and graph clients, built by
// newService from a Config, talk HTTP to the acstest and graphtest emulators; the worker on
// top of them reads a MemorySource (or, in realMain, a file).

// Principals of deploy/local/directory.json the tests name.
const (
	e2eAdele     = "e2a214e8-bbe9-4675-9d52-490575ffc53d" // in scope, Teams
	e2eAlex      = "03aa3897-fcf4-46b6-986c-39e8c7bb69f6" // in scope, Teams
	e2eDiego     = "5c22c469-63e9-48fd-a4d4-748ca3c77ebf" // in scope, Teams
	e2eLeeGu     = "0bcc0d1c-d5a9-4145-99ba-695ab78d8387" // in scope through the nested group
	e2eCQSupport = "64cec5fe-01d8-4fbc-b398-97dbbf44e1ec" // resource account (disabled by design)
	e2eReception = "fe399f93-5eab-4c89-a52f-0f9e8e8afc84" // Teams user holding a resource-account licence
	e2eOtherApp  = "0d6b1f2a-3c4e-4f5a-8b9c-7d6e5f4a3b2c" // another application's client id: never ours
)

// e2eOurIDs are the client ids the local settings grant.
var e2eOurIDs = strings.Split(localClientIDs, ",")

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

func sampleDirectory(t testing.TB) *graphtest.Directory {
	t.Helper()
	d, err := graphtest.LoadDirectoryFile(filepath.Join(repoRoot(t), localDirectory))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// lockedBuffer collects log output written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// e2eEnv is the two emulators and the service the binary would build against them.
type e2eEnv struct {
	acs   *acstest.Server
	graph *graphtest.Server
	dir   *graphtest.Directory
	logs  *lockedBuffer
}

func newE2E(t *testing.T, dir *graphtest.Directory, opts ...graphtest.Option) *e2eEnv {
	t.Helper()
	return &e2eEnv{acs: acstest.NewServer(t), graph: graphtest.NewServer(t, dir, opts...), dir: dir, logs: &lockedBuffer{}}
}

// env is the local mode's settings pointing at these emulators, plus extra key/value pairs.
func (e *e2eEnv) env(extra ...string) map[string]string {
	m := map[string]string{
		"ACS_CONNECTION_STRING": e.acs.ConnectionString(),
		"GRAPH_ENDPOINT":        e.graph.URL(),
		"TPE_TENANT_ID":         e.dir.TenantID(),
		"TPE_CLIENT_IDS":        localClientIDs,
		"TPE_CLIENT_STATE":      localClientState,
		"TPE_SCOPE_GROUPS":      localScopeGroup,
		"TPE_HTTP_LISTEN":       "127.0.0.1:0",
		"TPE_RESYNC_INTERVAL":   "0",
		"TPE_LOG_FORMAT":        "text",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// service builds the Config from env exactly as the subcommands do, and the service on it.
func (e *e2eEnv) service(t *testing.T, extra ...string) *service {
	t.Helper()
	env := e.env(extra...)
	var c Config
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := c.bindFlags(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(needs{acs: true, clientIDs: true, graph: true}); err != nil {
		t.Fatal(err)
	}
	graphSDK.Lock()
	svc, err := newService(&c, newLogger(e.logs, "text", "debug"), nil)
	graphSDK.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// graphSDK keeps parallel tests from building a Graph client while another one is in use:
// msgraph-sdk-go's constructor writes a package-level default (kiota's
// store.BackingStoreFactoryInstance) that every model constructor reads, which the race
// detector reports. Building takes the write lock; running a worker takes a read lock
// (never nested).
var graphSDK sync.RWMutex

// runWorker runs w under a read lock of graphSDK.
func runWorker(ctx context.Context, w *worker.Worker) error {
	graphSDK.RLock()
	defer graphSDK.RUnlock()
	return w.Run(ctx)
}

// newWorker wires a worker over src as run does.
func (e *e2eEnv) newWorker(t *testing.T, svc *service, src worker.Source, o worker.Options) *worker.Worker {
	t.Helper()
	o.Trust = worker.Trust{TenantID: svc.cfg.TenantID, ClientState: svc.cfg.ClientState}
	o.Logger = svc.log
	o.Registerer = svc.reg
	o.Probe = svc.probe
	if o.ProbeBackoff == nil {
		o.ProbeBackoff = func(int) time.Duration { return 20 * time.Millisecond }
	}
	w, err := worker.New(src, svc.rec, svc.dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// drain runs a worker over bodies until the memory source is exhausted.
func (e *e2eEnv) drain(t *testing.T, svc *service, bodies [][]byte, o worker.Options) (*worker.MemorySource, *settlements) {
	t.Helper()
	src := worker.NewMemorySource(bodies, worker.FileOptions{MaxDeliveryCount: 50, Backoff: func(int) time.Duration { return -1 }})
	rec := &settlements{}
	o.Observer = rec
	w := e.newWorker(t, svc, src, o)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := runWorker(ctx, w); err != nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (context: %v)\nlogs:\n%s", err, ctx.Err(), e.logs)
	}
	return src, rec
}

// writes counts the PUTs and DELETEs ACS received.
func (e *e2eEnv) writes() int {
	c := e.acs.Counts()
	return c["PUT"] + c["DELETE"]
}

// assignment returns what ACS holds for oid in our tenant.
func (e *e2eEnv) assignment(oid string) (acstest.Assignment, bool) {
	for _, a := range e.acs.Assignments() {
		if a.TenantID == e.dir.TenantID() && a.ObjectID == oid {
			return a, true
		}
	}
	return acstest.Assignment{}, false
}

// settlements records how each message left the worker.
type settlements struct {
	mu  sync.Mutex
	got map[string][]worker.Outcome
}

func (s *settlements) Reconciled(*worker.Delivery, worker.Target, worker.Result, error) {}

func (s *settlements) Settled(d *worker.Delivery, o worker.Outcome, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[string][]worker.Outcome{}
	}
	s.got[d.MessageID] = append(s.got[d.MessageID], o)
}

// last returns each message's final outcome.
func (s *settlements) last() map[string]worker.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]worker.Outcome{}
	for id, os := range s.got {
		out[id] = os[len(os)-1]
	}
	return out
}

// Message bodies in the shapes Graph and Event Grid deliver.

func e2eNotification(resource, changeType, clientState string, data map[string]any) map[string]any {
	return map[string]any{
		"subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07", "subscriptionExpirationDateTime": "2026-12-20T11:00:00Z",
		"changeType": changeType, "resource": resource, "resourceData": data,
		"clientState": clientState, "tenantId": graphtest.SampleTenantID,
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// userNote is a Graph webhook collection saying oid was updated, signed with clientState.
func userNoteSigned(oid, clientState string) []byte {
	data := map[string]any{"@odata.type": "#Microsoft.Graph.User", "id": oid, "organizationId": graphtest.SampleTenantID}
	return mustJSON(map[string]any{"value": []any{e2eNotification("Users/"+oid, "updated", clientState, data)}})
}

func userNote(oid string) []byte { return userNoteSigned(oid, localClientState) }

// deletedEvent is the Event Grid CloudEvent of the Graph partner topic for a deleted user.
func deletedEvent(oid string) []byte {
	data := map[string]any{"@odata.type": "#Microsoft.Graph.User", "id": oid, "organizationId": graphtest.SampleTenantID}
	return mustJSON(map[string]any{
		"specversion": "1.0", "type": "Microsoft.Graph.UserDeleted", "id": "ev-" + oid,
		"source":  "/tenants/" + graphtest.SampleTenantID + "/applications/" + e2eOurIDs[0],
		"subject": "Users/" + oid, "data": e2eNotification("Users/"+oid, "deleted", localClientState, data),
	})
}

// groupNote says the group's membership changed; nil added and removed mean no delta.
func groupNote(groupID string, added, removed []string) []byte {
	data := map[string]any{"@odata.type": "#Microsoft.Graph.Group", "id": groupID, "organizationId": graphtest.SampleTenantID}
	if added != nil || removed != nil {
		var delta []map[string]string
		for _, id := range added {
			delta = append(delta, map[string]string{"id": id})
		}
		for _, id := range removed {
			delta = append(delta, map[string]string{"id": id, "@removed": "deleted"})
		}
		data["members@delta"] = delta
	}
	return mustJSON(map[string]any{"value": []any{e2eNotification("Groups/"+groupID, "updated", localClientState, data)}})
}

func commandNote(verb, principal string) []byte {
	return worker.EncodeCommand(worker.Command(verb), principal, "")
}

// Verdicts: what the policy says for every principal, computed from the emulated directory
// without HTTP (internal/oracle), and compared with what ACS holds.

// checkConverged asserts that the principals named (all when none: every one the directory
// knows and every one ACS holds an assignment for) have the assignment the policy wants now.
// others are the principals seeded with another application's client id, which must survive.
func checkConverged(t *testing.T, dir *graphtest.Directory, acsSrv *acstest.Server, p worker.Policy, others map[string]bool, only ...string) {
	t.Helper()
	held := oracle.Held(acsSrv, dir.TenantID())
	ids := only
	if len(ids) == 0 {
		ids = oracle.All(dir, held)
	}
	for _, id := range ids {
		checkPrincipal(t, dir, held[id], p, others[id], id)
	}
}

// checkPrincipal compares one principal's assignment, cur, with the policy's verdict.
func checkPrincipal(t *testing.T, dir *graphtest.Directory, cur *worker.Assignment, p worker.Policy, other bool, id string) {
	t.Helper()
	v := oracle.Verdict(dir, p, id)
	if plan := worker.Decide(v, worker.CommandReconcile, cur, p); plan.Put != nil || plan.Delete {
		t.Errorf("%s (%s): ACS holds %+v; the policy still plans %s", id, v.Reason, cur, plan.Action)
		return
	}
	ours := cur != nil && slices.ContainsFunc(p.ClientIDs, func(c string) bool { return slices.Contains(cur.ClientIDs, c) })
	foreign := cur != nil && slices.ContainsFunc(cur.ClientIDs, func(c string) bool { return !slices.Contains(p.ClientIDs, c) })
	switch {
	case v.Type == worker.PrincipalUser && (cur == nil || cur.PrincipalType != worker.PrincipalUser || !ours):
		t.Errorf("%s: eligible Teams user, ACS holds %+v", id, cur)
	case v.Type == worker.PrincipalResourceAccount && (cur == nil || cur.PrincipalType != worker.PrincipalResourceAccount && !foreign):
		// Another application's user assignment on a resource account is not ours to replace.
		t.Errorf("%s: resource account, ACS holds %+v", id, cur)
	case v.Type == "" && ours:
		t.Errorf("%s (%s): not eligible but holds our client id: %+v", id, v.Reason, cur)
	}
	if other && (cur == nil || !slices.Contains(cur.ClientIDs, e2eOtherApp)) {
		t.Errorf("%s: another application's client id was removed: %+v", id, cur)
	}
}

// assertNoSecrets fails when logs hold the ACS access key or the client state.
func assertNoSecrets(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, localClientState) {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("logs hold a secret (%d characters)", len(s))
		}
	}
}

// want describes an assignment ACS must hold afterwards; nil means none.
type wantAssignment struct {
	principalType string
	clientIDs     []string
}

func userWith(ids ...string) *wantAssignment { return &wantAssignment{"user", ids} }

var resourceAccount = &wantAssignment{principalType: "teamsResourceAccount"}

func TestE2EMessagesConvergeThroughTheRealClients(t *testing.T) {
	t.Parallel()
	ours := slices.Sorted(slices.Values(e2eOurIDs))
	seedOurs := func(oids ...string) []acstest.Assignment {
		var as []acstest.Assignment
		for _, id := range oids {
			as = append(as, acstest.Assignment{ObjectID: id, TenantID: graphtest.SampleTenantID, PrincipalType: "user", ClientIDs: e2eOurIDs})
		}
		return as
	}
	tests := []struct {
		name       string
		seed       []acstest.Assignment
		change     func(d *graphtest.Directory) error
		bodies     [][]byte
		want       map[string]*wantAssignment
		wantDead   []string // dead-letter reasons, in order
		wantWrites int      // PUTs and DELETEs sent to ACS
	}{
		{
			name:   "onboarding grants our client ids",
			bodies: [][]byte{userNote(e2eAdele)},
			want:   map[string]*wantAssignment{e2eAdele: userWith(ours...)}, wantWrites: 1,
		},
		{
			name: "offboarding a deleted user deletes the assignment",
			seed: seedOurs(e2eAdele), change: func(d *graphtest.Directory) error { return d.DeleteUser(e2eAdele) },
			bodies: [][]byte{deletedEvent(e2eAdele)},
			want:   map[string]*wantAssignment{e2eAdele: nil}, wantWrites: 1,
		},
		{
			name: "offboarding a disabled user keeps another application's id",
			seed: []acstest.Assignment{{ObjectID: e2eAlex, TenantID: graphtest.SampleTenantID, PrincipalType: "user",
				ClientIDs: append([]string{e2eOtherApp}, e2eOurIDs...)}},
			change: func(d *graphtest.Directory) error { return d.SetAccountEnabled(e2eAlex, false) },
			bodies: [][]byte{userNote(e2eAlex)},
			want:   map[string]*wantAssignment{e2eAlex: userWith(e2eOtherApp)}, wantWrites: 1,
		},
		{
			name: "offboarding a user whose licence was removed",
			seed: seedOurs(e2eDiego),
			change: func(d *graphtest.Directory) error {
				if err := d.SetLicenses(e2eDiego); err != nil {
					return err
				}
				return d.SetPlans(e2eDiego)
			},
			bodies: [][]byte{userNote(e2eDiego)},
			want:   map[string]*wantAssignment{e2eDiego: nil}, wantWrites: 1,
		},
		{
			name: "offboarding a user who left the scope",
			seed: seedOurs(e2eLeeGu), change: func(d *graphtest.Directory) error { return d.RemoveMember(graphtest.NestedGroupID, e2eLeeGu) },
			bodies: [][]byte{groupNote(graphtest.NestedGroupID, nil, []string{e2eLeeGu})},
			want:   map[string]*wantAssignment{e2eLeeGu: nil}, wantWrites: 1,
		},
		{
			name:   "resource accounts get the server consent, by notification and by UPN command",
			bodies: [][]byte{userNote(e2eCQSupport), commandNote("reconcile", "reception@contoso.example")},
			want:   map[string]*wantAssignment{e2eCQSupport: resourceAccount, e2eReception: resourceAccount}, wantWrites: 2,
		},
		{
			name:   "three duplicates write once",
			bodies: [][]byte{userNote(e2eAlex), userNote(e2eAlex), userNote(e2eAlex)},
			want:   map[string]*wantAssignment{e2eAlex: userWith(ours...)}, wantWrites: 1,
		},
		{
			// Lee left the nested group and came back; the notifications arrive reversed, so
			// the last one says "removed". The directory now says member: grant.
			name: "reversed notifications follow the directory as it is now",
			change: func(d *graphtest.Directory) error {
				if err := d.RemoveMember(graphtest.NestedGroupID, e2eLeeGu); err != nil {
					return err
				}
				return d.AddMember(graphtest.NestedGroupID, e2eLeeGu)
			},
			bodies: [][]byte{groupNote(graphtest.NestedGroupID, []string{e2eLeeGu}, nil), groupNote(graphtest.NestedGroupID, nil, []string{e2eLeeGu})},
			want:   map[string]*wantAssignment{e2eLeeGu: userWith(ours...)}, wantWrites: 1,
		},
		{
			name:   "a forged clientState is dead-lettered untrusted and changes nothing",
			bodies: [][]byte{userNoteSigned(e2eAdele, "forged-client-state")},
			want:   map[string]*wantAssignment{e2eAdele: nil}, wantDead: []string{worker.ReasonUntrusted},
		},
		{
			name:   "malformed JSON is dead-lettered malformed",
			bodies: [][]byte{[]byte(`{not json`), userNote(e2eAlex)},
			want:   map[string]*wantAssignment{e2eAlex: userWith(ours...)}, wantDead: []string{worker.ReasonMalformed}, wantWrites: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t, sampleDirectory(t))
			e.acs.Seed(tt.seed...)
			if tt.change != nil {
				if err := tt.change(e.dir); err != nil {
					t.Fatal(err)
				}
			}
			src, _ := e.drain(t, e.service(t), tt.bodies, worker.Options{Concurrency: 4})

			for oid, want := range tt.want {
				got, ok := e.assignment(oid)
				switch {
				case want == nil && ok:
					t.Errorf("%s: ACS holds %+v, want no assignment", oid, got)
				case want != nil && !ok:
					t.Errorf("%s: no assignment, want %+v", oid, *want)
				case want != nil && (got.PrincipalType != want.principalType || !slices.Equal(slices.Sorted(slices.Values(got.ClientIDs)), want.clientIDs)):
					t.Errorf("%s: ACS holds %s %v, want %s %v", oid, got.PrincipalType, got.ClientIDs, want.principalType, want.clientIDs)
				}
			}
			var dead []string
			for _, d := range src.DeadLetters() {
				dead = append(dead, d.Reason)
			}
			if !slices.Equal(dead, tt.wantDead) {
				t.Errorf("dead-letter reasons = %v, want %v", dead, tt.wantDead)
			}
			if got, want := src.Completed(), len(tt.bodies)-len(tt.wantDead); got != want {
				t.Errorf("completed = %d, want %d", got, want)
			}
			if got := e.writes(); got != tt.wantWrites {
				t.Errorf("ACS writes = %d, want %d (every write is preceded by a read and skipped when nothing changes)", got, tt.wantWrites)
			}
			assertNoSecrets(t, e.logs.String(), e.acs.AccessKey())
			if t.Failed() {
				t.Logf("logs:\n%s", e.logs)
			}
		})
	}
}

func TestE2EThrottleBurstsAreRetriedNeverDeadLettered(t *testing.T) {
	t.Parallel()
	e := newE2E(t, sampleDirectory(t))
	// More 429s in a row than either client retries on its own, so some reach the worker.
	const acsBurst, graphBurst = 9, 6
	for range acsBurst {
		e.acs.FailNext(429, 20*time.Millisecond)
	}
	for range graphBurst {
		e.graph.FailNext(429, 0)
	}
	users := []string{e2eAdele, e2eAlex, e2eDiego, e2eLeeGu}
	var bodies [][]byte
	for _, id := range users {
		bodies = append(bodies, userNote(id))
	}
	src, _ := e.drain(t, e.service(t), bodies, worker.Options{Concurrency: 2})

	if dl := src.DeadLetters(); len(dl) != 0 {
		t.Errorf("dead letters = %+v, want none: throttling is temporary", dl)
	}
	if got := src.Completed(); got != len(bodies) {
		t.Errorf("completed = %d, want %d", got, len(bodies))
	}
	throttled := 0
	for _, r := range e.acs.Requests() {
		if r.Status == 429 {
			throttled++
		}
	}
	if throttled != acsBurst || e.graph.PendingFaults() != 0 {
		t.Errorf("ACS answered %d × 429 (want %d), Graph has %d faults left (want 0): the bursts were not met", throttled, acsBurst, e.graph.PendingFaults())
	}
	for _, id := range users {
		if _, ok := e.assignment(id); !ok {
			t.Errorf("%s not granted after the throttling passed", id)
		}
	}
}

func TestE2ERevokedACSKeyOpensTheCircuitWithoutDeadLetters(t *testing.T) {
	t.Parallel()
	e := newE2E(t, sampleDirectory(t))
	svc := e.service(t)
	good := e.acs.AccessKey()
	rotated := "cm90YXRlZC1rZXktdGhlLXdvcmtlci1kb2VzLW5vdC1ob2xk"
	e.acs.SetAccessKey(rotated) // the operator rotated the key; the worker still signs with the old one

	users := []string{e2eAdele, e2eAlex, e2eDiego, e2eLeeGu, e2eCQSupport}
	var bodies [][]byte
	for _, id := range users {
		bodies = append(bodies, userNote(id))
	}
	src := worker.NewMemorySource(bodies, worker.FileOptions{Backoff: func(int) time.Duration { return -1 }})
	w := e.newWorker(t, svc, src, worker.Options{Concurrency: 2})
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { done <- runWorker(ctx, w) }()

	unauthorized := func() int {
		n := 0
		for _, r := range e.acs.Requests() {
			if r.Status == 401 {
				n++
			}
		}
		return n
	}
	waitFor(t, "the circuit to open", func() bool {
		err := w.Ready()
		return err != nil && strings.Contains(err.Error(), "circuit open")
	})
	seen := unauthorized()
	waitFor(t, "probes to keep failing", func() bool { return unauthorized() >= seen+3 })
	if err := w.Ready(); err == nil {
		t.Fatal("Ready() = nil while every ACS call answers 401")
	}
	if n := len(src.DeadLetters()); n != 0 || src.Completed() != 0 {
		t.Fatalf("while the key is wrong: %d dead letters, %d completed; want 0 and 0", n, src.Completed())
	}

	e.acs.SetAccessKey(good) // the key is fixed: the probe closes the circuit
	if err := <-done; err != nil {
		t.Fatalf("Run = %v\nlogs:\n%s", err, e.logs)
	}
	if n := len(src.DeadLetters()); n != 0 {
		t.Errorf("dead letters = %d, want 0: the fault was the deployment's, not the messages'", n)
	}
	if got := src.Completed(); got != len(bodies) {
		t.Errorf("completed = %d, want %d once the key was fixed", got, len(bodies))
	}
	for _, id := range users {
		if _, ok := e.assignment(id); !ok {
			t.Errorf("%s not granted after the circuit closed", id)
		}
	}
	assertNoSecrets(t, e.logs.String(), good, rotated)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestE2EShutdownMidFlightCompletesNothingUnfinished(t *testing.T) {
	t.Parallel()
	e := newE2E(t, sampleDirectory(t))
	svc := e.service(t)
	e.acs.SetLatency(800 * time.Millisecond)
	users := []string{e2eAdele, e2eAlex, e2eDiego, e2eLeeGu, e2eCQSupport, e2eReception}
	var bodies [][]byte
	for _, id := range users {
		bodies = append(bodies, userNote(id))
	}
	src := worker.NewMemorySource(bodies, worker.FileOptions{})
	rec := &settlements{}
	w := e.newWorker(t, svc, src, worker.Options{Concurrency: 4, DrainTimeout: 100 * time.Millisecond, Observer: rec})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runWorker(ctx, w) }()
	waitFor(t, "ACS calls in flight", func() bool { return e.acs.Counts()["GET"] > 0 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the cancellation")
	}

	outcomes := rec.last()
	p := svc.policy()
	var redo [][]byte
	for i, id := range users {
		msg := fmt.Sprintf("msg-%d", i+1) // MemorySource numbers messages from 1
		switch outcomes[msg] {
		case worker.OutcomeCompleted:
			// Completed means done: ACS must already hold what the policy wants.
			checkConverged(t, e.dir, e.acs, p, nil, id)
		default:
			// Abandoned: either no write reached ACS, or the one that did is the policy's.
			if _, ok := e.assignment(id); ok {
				checkConverged(t, e.dir, e.acs, p, nil, id)
			}
			redo = append(redo, bodies[i])
		}
	}
	if len(redo) == 0 {
		t.Fatal("every message finished before the shutdown: the test did not interrupt anything")
	}
	if st := w.Stats(); st.Messages[worker.OutcomeAbandoned] == 0 {
		t.Errorf("stats = %+v, want the in-flight messages abandoned", st.Messages)
	}
	// Whatever an interrupted write left behind is consistent: redelivering the unfinished
	// messages converges every principal to the policy.
	e.acs.SetLatency(0)
	e.drain(t, svc, redo, worker.Options{Concurrency: 4})
	checkConverged(t, e.dir, e.acs, p, nil, users...)
	for _, id := range users {
		if _, ok := e.assignment(id); !ok {
			t.Errorf("%s not granted after the redelivery", id)
		}
	}
}

// The property over HTTP: whatever the directory does, and however its notifications are
// duplicated, reordered and met by emulator faults, once every message is settled each
// principal's assignment is the policy's verdict on the directory as it is at the end.

// propWorld is the emulated tenant a property run mutates.
type propWorld struct {
	rng     *rand.Rand
	dir     *graphtest.Directory
	ids     []string
	deleted map[string]bool
	member  map[string]map[string]bool // group → direct user members
}

func propID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// shape gives the user one of the kinds the policy tells apart.
func (w *propWorld) shape(u *graphtest.UserRecord) {
	teams := []graphtest.Plan{{ServicePlanID: graphtest.TeamsPlanID, CapabilityStatus: "Enabled"}}
	u.AccountEnabled, u.UserType, u.Department = true, "Member", ""
	u.AssignedLicenses, u.AssignedPlans = []graphtest.License{{SkuID: graphtest.E5SkuID}}, teams
	switch w.rng.IntN(7) {
	case 0: // disabled
		u.AccountEnabled = false
	case 1: // suspended Teams plan
		u.AssignedPlans = []graphtest.Plan{{ServicePlanID: graphtest.TeamsPlanID, CapabilityStatus: "Suspended"}}
	case 2: // resource account, disabled by design
		u.AccountEnabled, u.Department = false, graphtest.RADepartment
		u.AssignedLicenses = []graphtest.License{{SkuID: graphtest.RASkuID}}
		u.AssignedPlans = []graphtest.Plan{{ServicePlanID: graphtest.RAPlanID, CapabilityStatus: "Enabled"}}
	case 3: // guest
		u.UserType = "Guest"
	case 4: // unlicensed
		u.AssignedLicenses, u.AssignedPlans = nil, nil
	}
}

func newPropWorld(t *testing.T, seed uint64, n int) *propWorld {
	w := &propWorld{rng: rand.New(rand.NewPCG(seed, seed^0x7e2e)), dir: graphtest.NewDirectory(graphtest.SampleTenantID),
		deleted: map[string]bool{}, member: map[string]map[string]bool{graphtest.ScopeGroupID: {}, graphtest.NestedGroupID: {}}}
	for i := 1; i <= n; i++ {
		u := graphtest.UserRecord{ID: propID(i), UserPrincipalName: fmt.Sprintf("p%d@contoso.example", i)}
		w.shape(&u)
		if err := w.dir.AddUser(u); err != nil {
			t.Fatal(err)
		}
		w.ids = append(w.ids, u.ID)
		switch w.rng.IntN(4) {
		case 0, 1:
			w.member[graphtest.ScopeGroupID][u.ID] = true
		case 2:
			w.member[graphtest.NestedGroupID][u.ID] = true
		}
	}
	for _, g := range []string{graphtest.NestedGroupID, graphtest.ScopeGroupID} {
		members := slices.Sorted(maps.Keys(w.member[g]))
		if g == graphtest.ScopeGroupID {
			members = append(members, graphtest.NestedGroupID)
		}
		if err := w.dir.AddGroup(g, g, members...); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// mutate changes about a third of the live users and returns the notifications owed.
func (w *propWorld) mutate() ([][]byte, error) {
	var notes [][]byte
	added, removed := map[string][]string{}, map[string][]string{}
	for _, id := range w.ids {
		if w.deleted[id] || w.rng.IntN(3) != 0 {
			continue
		}
		var err error
		switch w.rng.IntN(4) {
		case 0:
			err = w.dir.DeleteUser(id)
			w.deleted[id] = true
			if w.rng.IntN(2) == 0 {
				notes = append(notes, deletedEvent(id))
			} else {
				notes = append(notes, userNote(id)) // Graph reports a soft delete as updated
			}
		case 1:
			g := []string{graphtest.ScopeGroupID, graphtest.NestedGroupID}[w.rng.IntN(2)]
			if w.member[g][id] {
				err = w.dir.RemoveMember(g, id)
				removed[g] = append(removed[g], id)
			} else {
				err = w.dir.AddMember(g, id)
				added[g] = append(added[g], id)
			}
			w.member[g][id] = !w.member[g][id]
		default:
			u, _ := w.dir.LookupUser(id)
			w.shape(&u)
			err = errors.Join(w.dir.SetAccountEnabled(id, u.AccountEnabled), w.dir.SetPlans(id, u.AssignedPlans...),
				w.dir.SetLicenses(id, skuIDs(u.AssignedLicenses)...))
			notes = append(notes, userNote(id))
		}
		if err != nil {
			return nil, err
		}
	}
	for _, g := range []string{graphtest.ScopeGroupID, graphtest.NestedGroupID} {
		if len(added[g])+len(removed[g]) > 0 {
			notes = append(notes, groupNote(g, added[g], removed[g]))
		}
	}
	return notes, nil
}

func skuIDs(ls []graphtest.License) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.SkuID)
	}
	return out
}

// deliver duplicates and shuffles notes as Graph and Event Grid do, and adds notifications
// for nothing and, sometimes, a group notification without a delta.
func (w *propWorld) deliver(notes [][]byte) [][]byte {
	var out [][]byte
	for _, n := range notes {
		for range 1 + w.rng.IntN(3) {
			out = append(out, n)
		}
	}
	for range 3 {
		out = append(out, userNote(w.ids[w.rng.IntN(len(w.ids))]))
	}
	if w.rng.IntN(3) == 0 {
		out = append(out, groupNote(graphtest.NestedGroupID, nil, nil))
	}
	w.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestE2EPropertyAssignmentsConvergeOverHTTP(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			checkConvergenceOverHTTP(t, seed, 40, 3)
		})
	}
}

func checkConvergenceOverHTTP(t *testing.T, seed uint64, n, rounds int) {
	w := newPropWorld(t, seed, n)
	e := newE2E(t, w.dir, func(o *graphtest.Options) { o.FaultRate, o.Seed = 0.05, int64(seed) })
	e.acs.SetFaultRate(0.05, int64(seed))
	others := map[string]bool{}
	var notes [][]byte
	for _, id := range w.ids { // whatever ACS holds before the worker ever ran
		a := acstest.Assignment{ObjectID: id, TenantID: graphtest.SampleTenantID, PrincipalType: "user"}
		switch w.rng.IntN(5) {
		case 1:
			a.ClientIDs = e2eOurIDs[:1]
		case 2:
			a.ClientIDs, others[id] = []string{e2eOtherApp}, true
		case 3:
			a.ClientIDs, others[id] = append([]string{e2eOtherApp}, e2eOurIDs...), true
		case 4:
			a.PrincipalType = "teamsResourceAccount"
		}
		if a.ClientIDs != nil || a.PrincipalType != "user" {
			e.acs.Seed(a)
		}
		notes = append(notes, userNote(id)) // the first resync names everyone
	}
	svc := e.service(t, "TPE_MANAGE_RESOURCE_ACCOUNTS", "true")
	for round := range rounds {
		// The directory keeps changing while the worker works; those changes' notifications
		// come in the next round. The last round changes nothing.
		bodies := w.deliver(notes) // before mutate starts drawing from the same generator
		var next [][]byte
		var mutErr error
		var mutating sync.WaitGroup
		if round < rounds-1 {
			mutating.Go(func() { next, mutErr = w.mutate() })
		}
		src, _ := e.drain(t, svc, bodies, worker.Options{Concurrency: 8})
		mutating.Wait()
		if mutErr != nil {
			t.Fatal(mutErr)
		}
		if dl := src.DeadLetters(); len(dl) != 0 {
			t.Fatalf("round %d: dead letters = %+v, want none: every fault was temporary", round, dl[:min(3, len(dl))])
		}
		notes = next
	}
	faults := 0
	for _, r := range e.acs.Requests() {
		if r.Status >= 429 {
			faults++
		}
	}
	if faults == 0 {
		t.Error("ACS never failed: the fault rate did not apply")
	}
	checkConverged(t, w.dir, e.acs, svc.policy(), others)
	if t.Failed() {
		t.Logf("logs:\n%s", e.logs)
	}
}

// withEnviron points the settings at env for one sequential test (environ is a package
// variable, so such tests must not run in parallel).
func withEnviron(t *testing.T, env map[string]string) {
	t.Helper()
	old := environ
	environ = func(k string) string { return env[k] }
	t.Cleanup(func() { environ = old })
}

// startLocalEmulators starts the emulators as `emulate` does, on the sample directory.
func startLocalEmulators(t *testing.T) *emulators {
	t.Helper()
	f := emulateFlags{acsListen: "127.0.0.1:0", graphListen: "127.0.0.1:0", directory: filepath.Join(repoRoot(t), localDirectory)}
	emu, err := startEmulators(context.Background(), f, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	return emu
}

// emulatorEnv is what `emulate` prints, plus the settings a test run needs.
func emulatorEnv(emu *emulators) map[string]string {
	env := map[string]string{"TPE_HTTP_LISTEN": "127.0.0.1:0", "TPE_RESYNC_INTERVAL": "0", "TPE_LOG_FORMAT": "json"}
	for _, kv := range emu.env() {
		env[kv[0]] = kv[1]
	}
	return env
}

// sampleOutcome is what deploy/local/sample-events.jsonl leaves in ACS under the local
// settings: Adele, Alex (line 1) and Lee Gu (line 9, a group delta) are in-scope Teams
// users; cq-support (line 2) and reception (line 10, by UPN) are resource accounts. Emily
// is disabled, Allan a guest, Irvin suspended, Megan out of scope, Bianca deleted; line 11
// is forged and line 12 malformed.
func sampleOutcome() map[string]*wantAssignment {
	ours := slices.Sorted(slices.Values(e2eOurIDs))
	return map[string]*wantAssignment{
		e2eAdele: userWith(ours...), e2eAlex: userWith(ours...), e2eLeeGu: userWith(ours...),
		e2eCQSupport: resourceAccount, e2eReception: resourceAccount,
	}
}

// checkSampleOutcome asserts that ACS holds exactly sampleOutcome.
func checkSampleOutcome(t *testing.T, got []acstest.Assignment) {
	t.Helper()
	want := sampleOutcome()
	if len(got) != len(want) {
		t.Errorf("ACS holds %d assignments, want %d: %+v", len(got), len(want), got)
	}
	for _, a := range got {
		w, ok := want[a.ObjectID]
		switch {
		case !ok:
			t.Errorf("unexpected assignment %+v", a)
		case a.TenantID != graphtest.SampleTenantID || a.PrincipalType != w.principalType ||
			!slices.Equal(slices.Sorted(slices.Values(a.ClientIDs)), w.clientIDs):
			t.Errorf("%s: ACS holds %s %v in %s, want %s %v", a.ObjectID, a.PrincipalType, a.ClientIDs, a.TenantID, w.principalType, w.clientIDs)
		}
	}
}

func TestRunFileSourceReplaysTheSampleEvents(t *testing.T) {
	// Not parallel: it swaps environ.
	emu := startLocalEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	events := filepath.Join(t.TempDir(), "sample-events.jsonl")
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/local/sample-events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(events, data, 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr lockedBuffer
	if code := realMain([]string{"run", "--source", "file:" + events}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	if got, want := stdout.String(), "messages: completed=10 dead_lettered=2 abandoned=0"; !strings.HasPrefix(got, want) {
		t.Errorf("summary = %q, want it to start with %q", got, want)
	}
	checkSampleOutcome(t, emu.acs.Assignments())

	f, err := os.Open(events + ".deadletter.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type deadLine struct {
		Line        int    `json:"line"`
		Reason      string `json:"reason"`
		Description string `json:"description"`
	}
	var dead []deadLine
	dec := json.NewDecoder(f)
	for {
		var d deadLine
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("dead-letter file: %v", err)
		}
		dead = append(dead, d)
	}
	slices.SortFunc(dead, func(a, b deadLine) int { return a.Line - b.Line })
	if len(dead) != 2 || dead[0].Line != 11 || dead[0].Reason != worker.ReasonUntrusted || dead[1].Line != 12 || dead[1].Reason != worker.ReasonMalformed {
		t.Errorf("dead letters = %+v, want line 11 untrusted and line 12 malformed", dead)
	}
	assertNoSecrets(t, stderr.String(), emu.acs.AccessKey())
}
