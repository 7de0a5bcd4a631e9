package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// TestGrantThePolicyRefusesNeedsForce runs grant through realMain against the emulators: a
// grant the policy contradicts is explained and refused, and --force grants it with a
// warning that the next resync undoes it.
func TestGrantThePolicyRefusesNeedsForce(t *testing.T) {
	emu := startLocalEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	puts := func() int { return emu.acs.Counts()["PUT"] }

	code, out, errOut := call("grant", "emily.braun@contoso.example")
	if code != 1 || out != "" || puts() != 0 {
		t.Fatalf("grant of a disabled user: exit %d, %d PUTs, stdout %q\nstderr:\n%s", code, puts(), out, errOut)
	}
	for _, want := range []string{"* account enabled", "the policy refuses emily.braun@contoso.example: account disabled",
		"the next resync would undo the grant", "--force"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refusal lacks %q:\n%s", want, errOut)
		}
	}

	code, _, errOut = call("grant", "--resource-account", e2eAdele)
	if code != 1 || puts() != 0 || !strings.Contains(errOut, "judges "+e2eAdele+" a user (teams plan enabled), not a teamsResourceAccount") {
		t.Errorf("server consent for a Teams user: exit %d, %d PUTs\nstderr:\n%s", code, puts(), errOut)
	}

	code, out, errOut = call("grant", "emily.braun@contoso.example", "--force")
	if code != 0 || puts() != 1 || !strings.Contains(out, `"principalType": "user"`) {
		t.Fatalf("forced grant: exit %d, %d PUTs, stdout %q\nstderr:\n%s", code, puts(), out, errOut)
	}
	if !strings.Contains(errOut, "granting because of --force. The next resync (or any notification about this principal) will undo it") {
		t.Errorf("forced grant does not warn:\n%s", errOut)
	}

	code, _, errOut = call("grant", e2eAdele)
	if code != 0 || puts() != 2 || strings.Contains(errOut, "warning") {
		t.Errorf("grant of an eligible user: exit %d, %d PUTs\nstderr:\n%s", code, puts(), errOut)
	}

	// A Graph refusal is no verdict: the grant is refused, not let through.
	emu.graph.FailOn(graphtest.OpGetUser, http.StatusForbidden, 0)
	code, _, errOut = call("grant", e2eDiego)
	if code != 1 || puts() != 2 || !strings.Contains(errOut, "check the grant against the policy") {
		t.Errorf("grant while Graph answers 403: exit %d, %d PUTs\nstderr:\n%s", code, puts(), errOut)
	}
}
