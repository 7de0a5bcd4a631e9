package main

import (
	"slices"
	"strings"
	"testing"

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
