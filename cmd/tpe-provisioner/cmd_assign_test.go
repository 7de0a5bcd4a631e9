package main

import (
	"strings"
	"testing"
)

// TestRevokeByUPNOfASoftDeletedUser: the CLI revoke goes through the Reconciler, which
// resolves a UPN through deleted users as the queue path does, so an operator can revoke a
// user who was deleted before the notification arrived.
func TestRevokeByUPNOfASoftDeletedUser(t *testing.T) {
	emu := startLocalEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	if code, _, errOut := call("grant", e2eAdele); code != 0 {
		t.Fatalf("grant: exit %d\n%s", code, errOut)
	}
	if err := emu.dir.DeleteUser(e2eAdele); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := call("revoke", "adele.vance@contoso.example")
	if code != 0 || emu.acs.Counts()["DELETE"] != 1 {
		t.Fatalf("revoke of a soft-deleted user by UPN: exit %d, %d DELETEs\nstderr:\n%s", code, emu.acs.Counts()["DELETE"], errOut)
	}
	if !strings.Contains(errOut, "revoke "+e2eAdele) {
		t.Errorf("revoke does not name the object id:\n%s", errOut)
	}
}
