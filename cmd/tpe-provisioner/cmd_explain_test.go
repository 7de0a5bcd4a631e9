package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// These tests run explain through realMain against the emulators holding the sample
// directory. They swap environ, so none of them is parallel.

const (
	e2eEmily = "f03198c4-5f95-4f9c-bef1-2c37ca6cd66c" // disabled Teams user
	e2eMegan = "c9ce5ddc-2a52-483e-96df-d21e9d1f5c01" // Teams user outside the scope group
)

// call runs realMain with args and returns its exit code, stdout and stderr.
func call(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := realMain(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func explainJSON(t *testing.T, principal string) explainReport {
	t.Helper()
	code, out, errOut := call("explain", principal, "-o", "json")
	if code != 0 {
		t.Fatalf("explain %s = exit %d\nstderr:\n%s", principal, code, errOut)
	}
	var rep explainReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("explain -o json printed no JSON: %v\n%s", err, out)
	}
	return rep
}

func ruleOutcome(rep explainReport, prefix string) (string, bool) {
	for _, r := range rep.Rules {
		if strings.HasPrefix(r.Name, prefix) {
			return string(r.Outcome), r.Decisive
		}
	}
	return "", false
}

func TestExplainVerdicts(t *testing.T) {
	emu := startLocalEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	emu.acs.Seed(acstest.Assignment{TenantID: emu.dir.TenantID(), ObjectID: e2eEmily, PrincipalType: "user",
		ClientIDs: append([]string{e2eOtherApp}, e2eOurIDs...)})

	tests := []struct {
		principal, action, reason, decisive string
		eligible                            bool
	}{
		{"adele.vance@contoso.example", "grant", "teams plan enabled", "teams plan TEAMS1", true},
		{e2eEmily, "revoke", "account disabled", "account enabled", false},
		{e2eMegan, "noop", "out of scope", "scope group " + localScopeGroup, false},
		{e2eCQSupport, "grant", "resource account licence", "resource account", true},
	}
	for _, tt := range tests {
		rep := explainJSON(t, tt.principal)
		if rep.Eligible != tt.eligible || rep.Reason != tt.reason {
			t.Errorf("%s: eligible %v (%s), want %v (%s)", tt.principal, rep.Eligible, rep.Reason, tt.eligible, tt.reason)
		}
		if rep.Reconcile == nil || string(rep.Reconcile.Action) != tt.action {
			t.Errorf("%s: reconcile = %+v, want %s", tt.principal, rep.Reconcile, tt.action)
		}
		if _, decisive := ruleOutcome(rep, tt.decisive); !decisive {
			t.Errorf("%s: rule %q not marked decisive: %+v", tt.principal, tt.decisive, rep.Rules)
		}
	}
	// Emily's revoke keeps the other application's id: explain shows what would remain.
	rep := explainJSON(t, e2eEmily)
	if rep.Assignment == nil || len(rep.Assignment.ClientIDs) != 3 ||
		rep.Reconcile.After == nil || strings.Join(rep.Reconcile.After.ClientIDs, ",") != e2eOtherApp {
		t.Errorf("Emily: assignment %+v, after %+v; want ours removed and %s kept", rep.Assignment, rep.Reconcile.After, e2eOtherApp)
	}
	if c := emu.acs.Counts(); c["PUT"] != 0 || c["DELETE"] != 0 {
		t.Errorf("explain wrote to ACS: %v", c)
	}

	code, out, _ := call("explain", e2eEmily)
	for _, want := range []string{"not eligible (account disabled)", "* account enabled", "fail", "reconcile   revoke: account disabled"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("table lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	code, out, _ = call("explain", "nobody@contoso.example")
	if code != 0 || !strings.Contains(out, "not eligible (not found in directory)") || !strings.Contains(out, "not read") {
		t.Errorf("unknown UPN (exit %d):\n%s", code, out)
	}
}

func TestExplainFailsOnAGraphOrACSErrorInsteadOfGuessing(t *testing.T) {
	emu := startLocalEmulators(t)
	env := emulatorEnv(emu)
	withEnviron(t, env)

	emu.graph.FailOn(graphtest.OpCheckMemberGroups, http.StatusForbidden, 0)
	code, out, errOut := call("explain", e2eAdele)
	if code != 1 || out != "" || !strings.Contains(errOut, "check the scope groups") || !strings.Contains(errOut, "403") {
		t.Errorf("403 on checkMemberGroups: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	emu.graph.ClearFaults()

	emu.acs.FailOn(http.MethodGet, http.StatusForbidden, 0)
	code, out, errOut = call("explain", e2eAdele)
	if code != 1 || out != "" || !strings.Contains(errOut, "403") {
		t.Errorf("403 on the ACS read: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	emu.acs.ClearFaults()

	// A wrong access key: the error says so and never prints the key.
	key := emu.acs.AccessKey()
	env["ACS_CONNECTION_STRING"] = strings.Replace(env["ACS_CONNECTION_STRING"], key, "Y2FuYXJ5LXdyb25nLWtleS0xMjM0NTY3ODkw", 1)
	code, out, errOut = call("explain", e2eAdele)
	if code != 1 || out != "" || !strings.Contains(errOut, "401") {
		t.Errorf("wrong key: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	assertNoSecrets(t, out+errOut, key, "Y2FuYXJ5LXdyb25nLWtleS0xMjM0NTY3ODkw")

	code, _, errOut = call("explain", "not-a-principal")
	if code != 1 || !strings.Contains(errOut, "neither an object id") {
		t.Errorf("bad principal: exit %d, stderr %s", code, errOut)
	}
	code, _, _ = call("explain", e2eAdele, "-o", "yaml")
	if code != 2 {
		t.Errorf("-o yaml: exit %d, want 2 (a usage error)", code)
	}
}
