package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The acceptance case of the revoke brake, through the binary's entry point: after a first
// backfill has granted everyone eligible, 30 % of the principals holding our assignment
// vanish from the directory. With a 20 % limit the backfill exits 3, prints the plan with
// those revokes, and revokes nothing; --force then applies them.
func TestBackfillBrakeExitsThreeAndRevokesNothing(t *testing.T) {
	emu := startLocalEmulators(t)
	withEnviron(t, emulatorEnv(emu))

	var out, errOut lockedBuffer
	if code := realMain([]string{"backfill", "--output", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("first backfill exit %d, want 0\n%s", code, errOut.String())
	}
	var users []string // principals holding our user assignment
	held := 0
	for _, a := range emu.acs.Assignments() {
		switch {
		case a.PrincipalType == "teamsResourceAccount":
			held++
		case slices.Contains(a.ClientIDs, e2eOurIDs[0]):
			held++
			users = append(users, a.ObjectID)
		}
	}
	// Soft-deleted users are what a backfill can still find (deletedItems); 30 % of the
	// holders vanish.
	vanished := (3*held + 5) / 10
	if vanished > len(users) || vanished < 2 {
		t.Fatalf("set-up: %d holders, %d of them users: cannot delete %d", held, len(users), vanished)
	}
	gone := users[:vanished]
	for _, id := range gone {
		if err := emu.dir.DeleteUser(id); err != nil {
			t.Fatal(err)
		}
	}
	pct := 100 * vanished / held
	if pct < 25 || pct > 35 {
		t.Fatalf("set-up: %d of %d holders vanish (%d %%), want about 30 %%", vanished, held, pct)
	}
	writesBefore := emu.acs.Counts()["PUT"] + emu.acs.Counts()["DELETE"]

	out, errOut = lockedBuffer{}, lockedBuffer{}
	code := realMain([]string{"backfill", "--output", "json", "--max-revoke-percent", "20"}, &out, &errOut)
	if code != 3 {
		t.Fatalf("backfill with %d %% vanished exit %d, want 3 (the brake)\nstderr:\n%s", pct, code, errOut.String())
	}
	if c := emu.acs.Counts(); c["PUT"]+c["DELETE"] != writesBefore {
		t.Errorf("the braked backfill wrote to ACS (%d writes)", c["PUT"]+c["DELETE"]-writesBefore)
	}
	for _, id := range gone {
		if !strings.Contains(out.String(), id) {
			t.Errorf("the printed plan does not name the vanished principal %s", id)
		}
	}
	totals := backfillTotals(t, out.String())
	if totals.Planned[worker.ActionRevoke] != vanished || totals.Applied[worker.ActionRevoke] != 0 {
		t.Errorf("totals = planned %v applied %v, want %d revokes planned and none applied", totals.Planned, totals.Applied, vanished)
	}
	if !strings.Contains(errOut.String(), "--force") {
		t.Errorf("stderr does not tell the operator how to go on:\n%s", errOut.String())
	}

	out, errOut = lockedBuffer{}, lockedBuffer{}
	if code := realMain([]string{"backfill", "--output", "json", "--max-revoke-percent", "20", "--force"}, &out, &errOut); code != 0 {
		t.Fatalf("backfill --force exit %d, want 0\n%s", code, errOut.String())
	}
	for _, a := range emu.acs.Assignments() {
		if slices.Contains(gone, a.ObjectID) {
			t.Errorf("vanished principal %s still holds %v after --force", a.ObjectID, a.ClientIDs)
		}
	}
}

// A worker in dry run resyncs without writing, whether the resync is scheduled or
// triggered by a lifecycle event; ACS sees reads only.
func TestRunDryRunResyncWritesNothing(t *testing.T) {
	tests := []struct {
		name     string
		interval string
		send     func(t *testing.T, f *sbFixture)
	}{
		{"scheduled", "300ms", nil},
		{"lifecycle event", "1h", func(t *testing.T, f *sbFixture) {
			note := fmt.Sprintf(`{"value":[{"subscriptionId":"9c2f4a1e-0000-4000-8000-000000000001","subscriptionExpirationDateTime":"2030-01-01T00:00:00Z","tenantId":%q,"clientState":%q,"lifecycleEvent":"missed"}]}`,
				f.emu.dir.TenantID(), localClientState)
			sendBody(t, f, note)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSBFixture(t, sbtest.Options{Queue: "tpe-notifications", LockDuration: 5 * time.Second})
			env := emulatorEnv(f.emu)
			env["SERVICEBUS_CONNECTION_STRING"] = f.sb.ConnectionString()
			env["SERVICEBUS_QUEUE"] = f.sb.Queue()
			env["TPE_DRY_RUN"] = "true"
			env["TPE_RESYNC_INTERVAL"] = tt.interval
			withEnviron(t, env)

			var send func()
			if tt.send != nil {
				send = func() { tt.send(t, f) }
			}
			stderr := runUntilResyncFinished(t, send)
			counts := f.emu.acs.Counts()
			if counts["PUT"]+counts["DELETE"] != 0 {
				t.Errorf("a dry-run worker's resync wrote to ACS: %v", counts)
			}
			if counts["GET"] == 0 {
				t.Errorf("the resync read nothing from ACS (%v): it did not plan", counts)
			}
			if !strings.Contains(stderr, `"dry_run":true`) {
				t.Errorf("the resync summary does not say dry run:\n%s", stderr)
			}
		})
	}
}

// runUntilResyncFinished runs `run` with the environment the test set, calls send (if not
// nil) once it has started, waits for the first resync to finish, stops it with a signal and
// returns its stderr. It fails the test when run stops early or no resync finishes in 30 s.
func runUntilResyncFinished(t *testing.T, send func()) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- runRun(ctx, nil, &stdout, &stderr) }()
	if send != nil {
		send()
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), `"msg":"resync finished"`) {
		select {
		case err := <-done:
			t.Fatalf("run stopped early: %v\nstderr:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no resync finished within 30 s\nstderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v after the signal\nstderr:\n%s", err, stderr.String())
	}
	return stderr.String()
}

// sendBody sends one message to the fixture's queue.
func sendBody(t *testing.T, f *sbFixture, body string) {
	t.Helper()
	sender := localSender(t, f.client, f.sb.Queue())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte(body)}, nil); err != nil {
		t.Fatal(err)
	}
}

// TPE_SCOPE_GROUPS naming a group the directory does not hold stops run and backfill at
// start with a message naming it; before, every notified user was revoked as out of scope.
func TestStartRefusesAScopeGroupThatDoesNotExist(t *testing.T) {
	const missing = "0badc0de-0000-4000-8000-00000000dead"
	emu := startLocalEmulators(t)
	env := emulatorEnv(emu)
	env["TPE_SCOPE_GROUPS"] = localScopeGroup + "," + missing
	withEnviron(t, env)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	sample, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/local/sample-events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(events, sample, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"backfill"}, {"run", "--source", "file:" + events}} {
		var out, errOut lockedBuffer
		code := realMain(args, &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), missing) || !strings.Contains(errOut.String(), "TPE_SCOPE_GROUPS") {
			t.Errorf("%v: exit %d, want non-zero with a message naming TPE_SCOPE_GROUPS and %s\nstderr:\n%s",
				args, code, missing, errOut.String())
		}
		if strings.Contains(errOut.String(), localScopeGroup) {
			t.Errorf("%v: the message names the existing group too:\n%s", args, errOut.String())
		}
	}
	if n := len(emu.acs.Requests()); n != 0 {
		t.Errorf("ACS saw %d requests; a refused start reconciles nothing", n)
	}
}

// An empty scope listing is not "nobody is in scope": backfill refuses the plan, names the
// group, writes nothing, and exits non-zero.
func TestBackfillRefusesAnEmptyScopeListing(t *testing.T) {
	emu := startLocalEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	var out, errOut lockedBuffer
	if code := realMain([]string{"backfill", "--output", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("first backfill exit %d, want 0\n%s", code, errOut.String())
	}
	g, ok := emu.dir.Group(localScopeGroup)
	if !ok {
		t.Fatal("set-up: no scope group")
	}
	for _, m := range g.Members {
		if err := emu.dir.RemoveMember(localScopeGroup, m); err != nil {
			t.Fatal(err)
		}
	}
	writes := emu.acs.Counts()["PUT"] + emu.acs.Counts()["DELETE"]
	out, errOut = lockedBuffer{}, lockedBuffer{}
	code := realMain([]string{"backfill", "--output", "json"}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), localScopeGroup) || !strings.Contains(errOut.String(), "empty") {
		t.Errorf("backfill on an empty scope listing exit %d, want non-zero naming the group and the empty listing\n%s", code, errOut.String())
	}
	if c := emu.acs.Counts(); c["PUT"]+c["DELETE"] != writes {
		t.Errorf("the refused backfill wrote %d times", c["PUT"]+c["DELETE"]-writes)
	}
}

func TestBrakeAndSweepSettings(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantErr     string  // substring of Validate's error; empty = valid
		wantPercent float64 // what the backfill options carry
		wantSweep   bool
	}{
		{"defaults: 10 % brake, sweep on", nil, "", 10, true},
		{"half a percent is half a percent", map[string]string{"TPE_MAX_REVOKE_PERCENT": "0.5"}, "", 0.5, true},
		{"1.9 is not 1", map[string]string{"TPE_MAX_REVOKE_PERCENT": "1.9"}, "", 1.9, true},
		{"0 turns the percentage off", map[string]string{"TPE_MAX_REVOKE_PERCENT": "0"}, "", -1, true},
		{"opt out of the sweep", map[string]string{"TPE_SWEEP_OUT_OF_SCOPE": "false"}, "", 10, false},
		{"NaN is refused", map[string]string{"TPE_MAX_REVOKE_PERCENT": "NaN"}, "TPE_MAX_REVOKE_PERCENT", 0, false},
		{"negative is refused", map[string]string{"TPE_MAX_REVOKE_PERCENT": "-5"}, "TPE_MAX_REVOKE_PERCENT", 0, false},
		{"infinity is refused", map[string]string{"TPE_MAX_REVOKE_PERCENT": "+Inf"}, "TPE_MAX_REVOKE_PERCENT", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(t, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(needs{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate = %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate = %v", err)
			}
			o := (&service{cfg: c}).backfillOptions()
			if o.MaxRevokePercent != tt.wantPercent || o.SweepOutOfScope != tt.wantSweep {
				t.Errorf("options percent=%v sweep=%v, want %v %v", o.MaxRevokePercent, o.SweepOutOfScope, tt.wantPercent, tt.wantSweep)
			}
		})
	}
}

// A transitiveMembers index that lost its entries answers an empty listing while the
// group still has its members: backfill refuses to plan from it; forced, it plans every
// holder's out-of-scope revoke, and each one's own scope check (transitiveMemberOf) keeps
// it from being written.
func TestBackfillConfirmsListingRevokesWithTheUsersScopeCheck(t *testing.T) {
	emu := startLocalEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	var out, errOut lockedBuffer
	if code := realMain([]string{"backfill", "--output", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("first backfill exit %d, want 0\n%s", code, errOut.String())
	}
	held := emu.acs.Assignments()
	emu.graph.EmptyListing(graphtest.OpTransitiveMembers)
	writes := func() int { c := emu.acs.Counts(); return c["PUT"] + c["DELETE"] }
	before := writes()

	out, errOut = lockedBuffer{}, lockedBuffer{}
	if code := realMain([]string{"backfill", "--output", "json"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "empty") {
		t.Errorf("backfill on an emptied listing exit %d, want non-zero saying the listing is empty\n%s", code, errOut.String())
	}
	checks := emu.graph.Calls("GET /v1.0/users/{id}/transitiveMemberOf")
	out, errOut = lockedBuffer{}, lockedBuffer{}
	if code := realMain([]string{"backfill", "--output", "json", "--force"}, &out, &errOut); code != 0 {
		t.Fatalf("forced backfill exit %d, want 0\n%s", code, errOut.String())
	}
	totals := backfillTotals(t, out.String())
	if totals.Planned[worker.ActionRevoke] == 0 {
		t.Fatalf("set-up: the emptied listing planned no revoke (planned %v)", totals.Planned)
	}
	if writes() != before || totals.Applied[worker.ActionRevoke] != 0 || totals.Stale != totals.Planned[worker.ActionRevoke] {
		t.Errorf("%d writes, applied %v, stale %d: want every planned revoke found stale by the user's scope check and none written",
			writes()-before, totals.Applied, totals.Stale)
	}
	if got := emu.graph.Calls("GET /v1.0/users/{id}/transitiveMemberOf") - checks; got < totals.Planned[worker.ActionRevoke] {
		t.Errorf("%d scope checks for %d planned revokes; want one per revoke", got, totals.Planned[worker.ActionRevoke])
	}
	if after := emu.acs.Assignments(); len(after) != len(held) {
		t.Errorf("ACS holds %d assignments, held %d before the listing fault", len(after), len(held))
	}
}
