package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Backfill under advanced-query lag, through the binary's entry point. Graph serves the
// scope listing (transitiveMembers) and the Teams user listing from an eventually
// consistent index, so they can be older than a direct read; graphtest's AdvancedQueryLag
// serves them from a copy taken by SnapshotListings, while user reads and
// checkMemberGroups see the directory as it is. A listing only chooses whom to look at:
// each planned change is applied through a full Reconcile of that principal, so what is
// written follows the fresh reads. Each test below has the stale listing plan the wrong
// write and checks that it is not the one made.

// startLaggedEmulators starts the emulators on the sample directory, with the Graph
// emulator's advanced-query listings frozen for an hour at each SnapshotListings (and at
// the first listing). They are httptest servers, which close at the end of the test
// without waiting on the clients' idle connections.
func startLaggedEmulators(t *testing.T, opts ...graphtest.Option) *emulators {
	t.Helper()
	dir := sampleDirectory(t)
	lag := func(o *graphtest.Options) { o.AdvancedQueryLag = time.Hour }
	return &emulators{dir: dir, acs: acstest.NewServer(t), graph: graphtest.NewServer(t, dir, append([]graphtest.Option{lag}, opts...)...)}
}

// lagBackfill runs `backfill --output json` plus args, wants exit 0, and returns the plan's
// rows by object id and its totals.
func lagBackfill(t *testing.T, args ...string) (map[string]backfill.PlanRow, backfill.PlanTotals) {
	t.Helper()
	var out, errOut lockedBuffer
	if code := realMain(append([]string{"backfill", "--output", "json"}, args...), &out, &errOut); code != 0 {
		t.Fatalf("backfill %v exit %d, want 0\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errOut.String())
	}
	var doc struct {
		Plan []backfill.PlanRow `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out.String()), &doc); err != nil {
		t.Fatalf("backfill -o json printed no JSON document: %v\n%s", err, out.String())
	}
	rows := map[string]backfill.PlanRow{}
	for _, r := range doc.Plan {
		rows[r.ObjectID] = r
	}
	return rows, backfillTotals(t, out.String())
}

// holdsOurs reports whether a holds one of our client ids.
func holdsOurs(a acstest.Assignment, ok bool) bool {
	return ok && slices.ContainsFunc(a.ClientIDs, func(id string) bool { return slices.Contains(e2eOurIDs, id) })
}

// emulatedAssignment returns what ACS holds for oid.
func emulatedAssignment(emu *emulators, oid string) (acstest.Assignment, bool) {
	for _, a := range emu.acs.Assignments() {
		if a.ObjectID == oid {
			return a, true
		}
	}
	return acstest.Assignment{}, false
}

// (a) A user added to the scope group after the listing's snapshot, and granted on the
// notification of that change, is absent from the lagged scope listing; the sweep finds her
// among the Teams users and plans an out-of-scope revoke. Her own checkMemberGroups says
// she is in scope, so the backfill keeps her assignment.
func TestBackfillUnderListingLagKeepsAUserAddedAfterTheSnapshot(t *testing.T) {
	emu := startLaggedEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	lagBackfill(t) // everyone in scope is granted

	emu.graph.SnapshotListings()
	if err := emu.dir.AddMember(localScopeGroup, e2eMegan); err != nil {
		t.Fatal(err)
	}
	// The change notification for her, worked by `run` as it comes off the queue.
	events := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(events, append(userNote(e2eMegan), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut lockedBuffer
	if code := realMain([]string{"run", "--source", "file:" + events}, &out, &errOut); code != 0 {
		t.Fatalf("run over the notification for %s exit %d\n%s", e2eMegan, code, errOut.String())
	}
	if !holdsOurs(emulatedAssignment(emu, e2eMegan)) {
		t.Fatalf("set-up: %s holds no assignment after joining the scope", e2eMegan)
	}

	rows, totals := lagBackfill(t)
	if r := rows[e2eMegan]; r.Action != worker.ActionRevoke {
		t.Fatalf("set-up: the lagged listing planned %q for %s, want an out-of-scope revoke (rows: %d)", r.Action, e2eMegan, len(rows))
	}
	if !holdsOurs(emulatedAssignment(emu, e2eMegan)) {
		t.Errorf("%s, a scope member the lagged listing missed, was revoked by backfill", e2eMegan)
	}
	if totals.Applied[worker.ActionRevoke] != 0 || totals.Stale < 1 {
		t.Errorf("totals: applied %v, stale %d; want no revoke applied and the planned one counted stale", totals.Applied, totals.Stale)
	}
}

// (b) A user removed from the scope group after the listing's snapshot is still listed as
// a member. Diego held nothing: the listing plans a grant, his own scope check says he is
// out, and nothing is granted. Adele held one of our client ids only: the listing plans the
// update to both; her scope check says she is out, and the fresh verdict, a revoke, is
// what is written.
func TestBackfillUnderListingLagFollowsTheFreshScopeCheckOfARemovedUser(t *testing.T) {
	emu := startLaggedEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	emu.acs.Seed(acstestUser(e2eAdele, e2eOurIDs[0]))
	emu.graph.SnapshotListings()
	for _, id := range []string{e2eDiego, e2eAdele} {
		if err := emu.dir.RemoveMember(localScopeGroup, id); err != nil {
			t.Fatal(err)
		}
	}

	rows, totals := lagBackfill(t)
	for _, id := range []string{e2eDiego, e2eAdele} {
		if r := rows[id]; r.Action != worker.ActionGrant || r.Source != "backfill/scope" {
			t.Fatalf("set-up: the lagged listing planned %q (source %q) for %s, want a grant from the scope listing", r.Action, r.Source, id)
		}
	}
	if a, ok := emulatedAssignment(emu, e2eDiego); ok {
		t.Errorf("%s, removed from the scope before the backfill, was granted: %+v", e2eDiego, a)
	}
	if a, ok := emulatedAssignment(emu, e2eAdele); holdsOurs(a, ok) {
		t.Errorf("%s, removed from the scope before the backfill, still holds our client ids: %+v", e2eAdele, a)
	}
	if totals.Applied[worker.ActionRevoke] != 1 || totals.Stale != 2 {
		t.Errorf("totals: applied %v, stale %d; want Adele's revoke applied and both planned grants counted stale", totals.Applied, totals.Stale)
	}
}

// A holder removed from the scope after the snapshot is listed as a member who holds her
// assignment: her row plans no write, so this backfill does not look at her again (only a
// planned change is re-read). Her group's change notification revokes her on the message
// path; without it, the first backfill after the index has caught up plans her revoke,
// confirms it with her own scope check and writes it.
func TestBackfillUnderListingLagRevokesARemovedHolderOnceTheListingCatchesUp(t *testing.T) {
	var ahead atomic.Int64 // how far the Graph emulator's clock is ahead of the wall clock
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	emu := startLaggedEmulators(t, func(o *graphtest.Options) { o.Clock = clock })
	withEnviron(t, emulatorEnv(emu))
	lagBackfill(t) // everyone in scope is granted
	emu.graph.SnapshotListings()
	if err := emu.dir.RemoveMember(localScopeGroup, e2eAdele); err != nil {
		t.Fatal(err)
	}

	rows, _ := lagBackfill(t)
	_, written := rows[e2eAdele] // rows that plan no write are not printed
	t.Logf("during the lag: a write planned for %s: %v; holds our ids: %v", e2eAdele, written, holdsOurs(emulatedAssignment(emu, e2eAdele)))

	ahead.Store(int64(2 * time.Hour)) // the index catches up
	rows, totals := lagBackfill(t)
	if r := rows[e2eAdele]; r.Action != worker.ActionRevoke {
		t.Errorf("after the lag: %s planned %q, want the out-of-scope revoke", e2eAdele, r.Action)
	}
	if a, ok := emulatedAssignment(emu, e2eAdele); holdsOurs(a, ok) {
		t.Errorf("%s, out of scope, still holds our client ids once the listing caught up: %+v", e2eAdele, a)
	}
	if totals.Applied[worker.ActionRevoke] != 1 {
		t.Errorf("applied %v, want exactly her revoke", totals.Applied)
	}
}

// (c) A user disabled after the listing's snapshot is listed enabled, so the listing plans
// his grant; the fresh user read says accountEnabled false, and nothing is granted.
func TestBackfillUnderListingLagDoesNotGrantAUserDisabledAfterTheSnapshot(t *testing.T) {
	emu := startLaggedEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	emu.graph.SnapshotListings()
	if err := emu.dir.SetAccountEnabled(e2eAlex, false); err != nil {
		t.Fatal(err)
	}

	rows, totals := lagBackfill(t)
	if r := rows[e2eAlex]; r.Action != worker.ActionGrant {
		t.Fatalf("set-up: the lagged listing planned %q for %s, want a grant", r.Action, e2eAlex)
	}
	if a, ok := emulatedAssignment(emu, e2eAlex); ok {
		t.Errorf("%s, disabled before the backfill, was granted: %+v", e2eAlex, a)
	}
	if a, ok := emulatedAssignment(emu, e2eAdele); !holdsOurs(a, ok) {
		t.Errorf("%s, eligible, was not granted: the backfill did not run its plan", e2eAdele)
	}
	if totals.Stale != 1 {
		t.Errorf("totals: stale %d, want 1 (Alex's planned grant)", totals.Stale)
	}
}

// The resync inside `run` is a backfill too: on a listing frozen before three changes — a
// granted user joined the scope, one left it, one was disabled — its plan holds a revoke
// and two grants that are wrong now, and the fresh reads write none of them.
func TestResyncUnderListingLagFollowsTheFreshReads(t *testing.T) {
	emu := startLaggedEmulators(t)
	sb := sbtest.Start(t, sbtest.Options{Queue: "tpe-notifications", LockDuration: 5 * time.Second})
	env := emulatorEnv(emu)
	env["SERVICEBUS_CONNECTION_STRING"] = sb.ConnectionString()
	env["SERVICEBUS_QUEUE"] = sb.Queue()
	env["TPE_RESYNC_INTERVAL"] = "300ms"
	withEnviron(t, env)
	ours := slices.Clone(e2eOurIDs)
	emu.acs.Seed(acstestUser(e2eMegan, ours...)) // as the message path left her on joining
	emu.graph.SnapshotListings()
	if err := emu.dir.AddMember(localScopeGroup, e2eMegan); err != nil {
		t.Fatal(err)
	}
	if err := emu.dir.RemoveMember(localScopeGroup, e2eDiego); err != nil {
		t.Fatal(err)
	}
	if err := emu.dir.SetAccountEnabled(e2eAlex, false); err != nil {
		t.Fatal(err)
	}

	stderr := runUntilResyncFinished(t, nil)

	if !holdsOurs(emulatedAssignment(emu, e2eMegan)) {
		t.Errorf("%s, a scope member the lagged listing missed, lost her assignment", e2eMegan)
	}
	for _, id := range []string{e2eDiego, e2eAlex} {
		if a, ok := emulatedAssignment(emu, id); ok {
			t.Errorf("%s, no longer eligible when the resync ran, was granted: %+v", id, a)
		}
	}
	if !holdsOurs(emulatedAssignment(emu, e2eAdele)) {
		t.Errorf("%s, eligible, was not granted: the resync did not apply its plan", e2eAdele)
	}
	if !strings.Contains(stderr, `"stale_rows":3`) {
		t.Errorf("the resync summary does not count the three superseded rows as stale:\n%s", stderr)
	}
}
