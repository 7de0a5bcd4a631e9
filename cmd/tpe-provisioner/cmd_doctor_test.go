package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// doctorReport runs doctor -o json through realMain.
func doctorReport(t *testing.T) (int, map[string]check, string) {
	t.Helper()
	code, out, errOut := call("doctor", "-o", "json")
	var rep struct {
		Checks []check `json:"checks"`
		Failed int     `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor -o json: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	byName := map[string]check{}
	for _, c := range rep.Checks {
		byName[c.Name] = c
	}
	return code, byName, out + errOut
}

// wantStatus checks the named checks' statuses and that every other check passed or was
// skipped or warned about only as listed.
func wantStatus(t *testing.T, what string, got map[string]check, want map[string]string) {
	t.Helper()
	for name, c := range got {
		w, listed := want[name]
		switch {
		case listed && c.Status != w:
			t.Errorf("%s: %s = %s (%s), want %s", what, name, c.Status, c.Detail, w)
		case !listed && c.Status == checkFail:
			t.Errorf("%s: %s failed unexpectedly: %s", what, name, c.Detail)
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: no check %q among %v", what, name, got)
		}
	}
}

// TestDoctorAgainstTheEmulators runs doctor on the emulators and the local Service Bus
// endpoint, healthy and then with one fault at a time. Not parallel: it swaps environ.
func TestDoctorAgainstTheEmulators(t *testing.T) {
	emu := startLocalEmulators(t)
	sb := sbtest.Start(t, sbtest.Options{})
	env := emulatorEnv(emu)
	env["SERVICEBUS_CONNECTION_STRING"], env["SERVICEBUS_QUEUE"] = sb.ConnectionString(), sb.Queue()
	env["TPE_CLIENT_STATE"] = "canary-doctor-client-state-81f2"
	withEnviron(t, env)
	writesBefore := emu.acs.Counts()["PUT"] + emu.acs.Counts()["DELETE"]

	code, got, text := doctorReport(t)
	wantStatus(t, "healthy", got, map[string]string{
		"settings": checkPass, "acs": checkPass, "graph token": checkPass, "graph User.Read.All": checkPass,
		"graph GroupMember.Read.All": checkPass, "scope group " + localScopeGroup: checkPass,
		"graph worker read":               checkPass,
		"service bus queue " + sb.Queue(): checkPass, "dead letters": checkPass,
		// The local endpoint serves AMQP only: the administration API cannot be read.
		"queue settings":              checkWarn,
		"tenant id matches the token": checkSkip, "subscriptions": checkSkip,
	})
	if code != 0 {
		t.Errorf("healthy setup: exit %d\n%s", code, text)
	}
	if !strings.Contains(got["queue settings"].Detail, "could not read queue settings") {
		t.Errorf("queue settings = %+v", got["queue settings"])
	}

	// A wrong access key fails the ACS check only, and never shows the key.
	const canaryKey = "Y2FuYXJ5LWRvY3Rvci13cm9uZy1rZXktMTIzNA=="
	key := emu.acs.AccessKey()
	env["ACS_CONNECTION_STRING"] = strings.Replace(emulatorEnv(emu)["ACS_CONNECTION_STRING"], key, canaryKey, 1)
	code, got, text = doctorReport(t)
	wantStatus(t, "wrong key", got, map[string]string{"acs": checkFail})
	if code != 1 || !strings.Contains(got["acs"].Detail, "401") || !strings.Contains(got["acs"].Fix, "access key") {
		t.Errorf("wrong key: exit %d, acs = %+v", code, got["acs"])
	}
	assertNoSecrets(t, text, key, canaryKey, env["TPE_CLIENT_STATE"], sb.ConnectionString())
	env["ACS_CONNECTION_STRING"] = emulatorEnv(emu)["ACS_CONNECTION_STRING"]

	// 403 on checkMemberGroups alone: the permission it needs is named; the user read passes.
	emu.graph.FailOn(graphtest.OpCheckMemberGroups, http.StatusForbidden, 0)
	code, got, _ = doctorReport(t)
	wantStatus(t, "403 on checkMemberGroups", got, map[string]string{
		"graph GroupMember.Read.All": checkFail, "graph User.Read.All": checkPass, "scope group " + localScopeGroup: checkPass})
	if code != 1 || !strings.Contains(got["graph GroupMember.Read.All"].Fix, "GroupMember.Read.All") {
		t.Errorf("403 on checkMemberGroups: exit %d, %+v", code, got["graph GroupMember.Read.All"])
	}
	emu.graph.ClearFaults()

	// The worker's own read (the user and its memberships in one $batch) refused: named apart,
	// since every message would fail on it while the single calls pass.
	for _, op := range []string{graphtest.OpBatch, graphtest.OpTransitiveMemberOf} {
		emu.graph.FailOn(op, http.StatusForbidden, 0)
		code, got, _ = doctorReport(t)
		wantStatus(t, "403 on "+op, got, map[string]string{
			"graph worker read": checkFail, "graph User.Read.All": checkPass, "graph GroupMember.Read.All": checkPass})
		if code != 1 || !strings.Contains(got["graph worker read"].Detail, "403") {
			t.Errorf("403 on %s: exit %d, %+v", op, code, got["graph worker read"])
		}
		emu.graph.ClearFaults()
	}

	// A scope group the directory does not hold.
	const ghost = "0badc0de-0000-4000-8000-000000000000"
	env["TPE_SCOPE_GROUPS"] = localScopeGroup + "," + ghost
	code, got, _ = doctorReport(t)
	wantStatus(t, "missing scope group", got, map[string]string{"scope group " + ghost: checkFail, "scope group " + localScopeGroup: checkPass})
	if code != 1 || !strings.Contains(got["scope group "+ghost].Detail, "no such group") {
		t.Errorf("missing scope group: exit %d, %+v", code, got["scope group "+ghost])
	}
	env["TPE_SCOPE_GROUPS"] = localScopeGroup

	// A queue that does not exist.
	env["SERVICEBUS_QUEUE"] = "no-such-queue"
	code, got, _ = doctorReport(t)
	wantStatus(t, "missing queue", got, map[string]string{"service bus queue no-such-queue": checkFail})
	if code != 1 || !strings.Contains(got["service bus queue no-such-queue"].Detail, "does not exist") {
		t.Errorf("missing queue: exit %d, %+v", code, got["service bus queue no-such-queue"])
	}
	env["SERVICEBUS_QUEUE"] = sb.Queue()

	// Subscriptions: missing, then present, then pointing somewhere else than the settings say.
	const eventGrid = "azuresubscriptionid=11111111-2222-3333-4444-555555555555&resourcegroup=rg-tpe&partnertopic=%s&location=westeurope"
	env["TPE_EVENT_GRID"] = strings.Replace(eventGrid, "%s", "tpe-graph", 1)
	_, got, _ = doctorReport(t)
	wantStatus(t, "no subscriptions yet", got, map[string]string{"subscription users": checkWarn, "subscription groups/" + localScopeGroup: checkWarn})
	if code, _, errOut := call("subscribe"); code != 0 {
		t.Fatalf("subscribe: exit %d\n%s", code, errOut)
	}
	code, got, _ = doctorReport(t)
	wantStatus(t, "subscribed", got, map[string]string{"subscription users": checkPass, "subscription groups/" + localScopeGroup: checkPass})
	if code != 0 {
		t.Errorf("subscribed: exit %d", code)
	}
	env["TPE_EVENT_GRID"] = strings.Replace(eventGrid, "%s", "another-topic", 1)
	code, got, _ = doctorReport(t)
	wantStatus(t, "subscriptions elsewhere", got, map[string]string{"subscription users": checkFail, "subscription groups/" + localScopeGroup: checkFail})
	if code != 1 || !strings.Contains(got["subscription users"].Detail, "partnertopic=tpe-graph") {
		t.Errorf("subscriptions elsewhere: exit %d, %+v", code, got["subscription users"])
	}
	delete(env, "TPE_EVENT_GRID")

	// Bad settings are named, one line each.
	env["TPE_CLIENT_IDS"] = "not-a-guid"
	code, got, _ = doctorReport(t)
	if c := got["settings TPE_CLIENT_IDS"]; code != 1 || c.Status != checkFail || !strings.Contains(c.Detail, "not a GUID") {
		t.Errorf("client id not a GUID: exit %d, %+v", code, c)
	}
	env["TPE_CLIENT_IDS"] = localClientIDs

	if w := emu.acs.Counts()["PUT"] + emu.acs.Counts()["DELETE"]; w != writesBefore {
		t.Errorf("doctor wrote to ACS: %d writes", w-writesBefore)
	}
	code, out, _ := call("doctor")
	if code != 0 || !strings.Contains(out, "PASS  acs") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
}

func TestISODuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"PT1M": time.Minute, "PT30S": 30 * time.Second, "PT1H5M": 65 * time.Minute,
		"P1D": 24 * time.Hour, "PT0.5S": 500 * time.Millisecond} {
		if got, ok := isoDuration(in); !ok || got != want {
			t.Errorf("isoDuration(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "1M", "P1M", "PT", "PTXS"} {
		if got, ok := isoDuration(in); ok && in != "PT" {
			t.Errorf("isoDuration(%q) = %v, ok; want a refusal", in, got)
		}
	}
}

func TestTokenTenant(t *testing.T) {
	t.Parallel()
	// header.payload.signature with payload {"tid":"8f1c3a52-3f5e-4b8a-9d2e-5b7c1e0a4d61"}
	tok := "eyJhbGciOiJub25lIn0.eyJ0aWQiOiI4ZjFjM2E1Mi0zZjVlLTRiOGEtOWQyZS01YjdjMWUwYTRkNjEifQ.c2ln"
	if tid, ok := tokenTenant(tok); !ok || tid != "8f1c3a52-3f5e-4b8a-9d2e-5b7c1e0a4d61" {
		t.Errorf("tokenTenant = %q, %v", tid, ok)
	}
	if _, ok := tokenTenant("local-emulator-token"); ok {
		t.Error("an opaque token has no tenant")
	}
}
