package main

import (
	"encoding/json"
	"github.com/tpe-provisioner/tpe-provisioner/backfill"
	"io"
	"strings"
	"testing"
)

// The CLI habits az, kubectl and terraform users expect, through realMain. None of these
// tests reaches a service: every case ends before a client is built.

// Help is asked for: it goes to stdout and exits 0, for the program and for each command.
func TestHelpGoesToStdoutAndExitsZero(t *testing.T) {
	withEnviron(t, map[string]string{})
	cases := []struct {
		args []string
		want string // a line only this help prints
	}{
		{[]string{"-h"}, "usage: tpe-provisioner <command> [flags]"},
		{[]string{"--help"}, "usage: tpe-provisioner <command> [flags]"},
		{[]string{"help"}, "usage: tpe-provisioner <command> [flags]"},
		{[]string{"help", "get"}, "usage: tpe-provisioner get [flags] OBJECT_ID|UPN"},
		{[]string{"get", "--help"}, "usage: tpe-provisioner get [flags] OBJECT_ID|UPN"},
		{[]string{"get", "-h"}, "usage: tpe-provisioner get [flags] OBJECT_ID|UPN"},
		{[]string{"get", "adele@contoso.com", "--help"}, "usage: tpe-provisioner get [flags] OBJECT_ID|UPN"},
		{[]string{"deadletters", "list", "--help"}, "usage: tpe-provisioner deadletters"},
		{[]string{"help", "backfill"}, "usage: tpe-provisioner backfill [flags]"},
		{[]string{"run", "--help"}, "usage: tpe-provisioner run [flags]"},
		{[]string{"config", "-h"}, "usage: tpe-provisioner config [flags]"},
	}
	for _, tc := range cases {
		code, out, errOut := call(tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) || errOut != "" {
			t.Errorf("%q: exit %d, want 0 with %q on stdout and nothing on stderr\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.want, out, errOut)
		}
	}
	if code, out, errOut := call("help", "gett"); code != 2 || out != "" || !strings.Contains(errOut, `did you mean "get"?`) {
		t.Errorf("help gett: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// Every help says what its exit codes mean, the program's and the command's own ones.
func TestHelpDocumentsExitCodes(t *testing.T) {
	withEnviron(t, map[string]string{})
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"exit codes:", "0 ", "1 ", "2 ", "3 ", "4 "}},
		{[]string{"get", "--help"}, []string{"exit codes:", "2  usage", "4  no assignment"}},
		{[]string{"backfill", "--help"}, []string{"exit codes:", "3  the revoke brake"}},
		{[]string{"doctor", "--help"}, []string{"exit codes:", "1  a check failed"}},
		{[]string{"deadletters", "--help"}, []string{"exit codes:", "4  show: no dead letter"}},
		{[]string{"version", "--help"}, []string{"exit codes:", "0  success"}},
	}
	for _, tc := range cases {
		_, out, _ := call(tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q help lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
	for name := range commands {
		if _, out, _ := call(name, "--help"); !strings.Contains(out, "exit codes:") {
			t.Errorf("%s --help documents no exit codes:\n%s", name, out)
		}
	}
}

// A usage error is one line and a hint on stderr, exit 2: no flag dump.
func TestUsageErrorIsOneLineAndHint(t *testing.T) {
	withEnviron(t, map[string]string{})
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"get"}, "missing"},
		{[]string{"get", "a@contoso.com", "b@contoso.com"}, "b@contoso.com"},
		{[]string{"get", "--no-such-flag", "a@contoso.com"}, "no-such-flag"},
		{[]string{"explain"}, "missing"},
		{[]string{"enqueue"}, "missing"},
		{[]string{"backfill", "--concurrency", "many"}, "many"},
		{[]string{"run", "extra"}, `"extra"`},
		{[]string{"deadletters"}, "missing"},
		{[]string{"deadletters", "list", "--bogus"}, "bogus"},
		{[]string{"config", "--bogus"}, "bogus"},
		{[]string{"version", "stray"}, `"stray"`},
	}
	for _, tc := range cases {
		code, out, errOut := call(tc.args...)
		hint := "run 'tpe-provisioner " + tc.args[0] + " --help'"
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, hint) || len(lines) != 2 {
			t.Errorf("%q: exit %d (want 2), want two lines on stderr naming %q and the hint %q\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.want, hint, out, errOut)
		}
	}
}

// An unknown command suggests the nearest one.
func TestUnknownCommandSuggestsTheNearest(t *testing.T) {
	cases := map[string]string{"gett": "get", "explian": "explain", "deadleters": "deadletters", "versoin": "version", "subcribe": "subscribe"}
	for typo, want := range cases {
		code, out, errOut := call(typo)
		if code != 2 || out != "" || !strings.Contains(errOut, `did you mean "`+want+`"?`) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and did you mean %q", typo, code, errOut, want)
		}
	}
	if code, _, errOut := call("frobnicate"); code != 2 || strings.Contains(errOut, "did you mean") || !strings.Contains(errOut, "unknown command") {
		t.Errorf("frobnicate: exit %d, stderr %q; want 2 and no suggestion", code, errOut)
	}
	if code, _, errOut := call("--log-level", "debug", "get", e2eAdele); code != 2 || !strings.Contains(errOut, "flags follow the command") {
		t.Errorf("a flag before the command: exit %d, stderr %q; want 2 and where flags go", code, errOut)
	}
	withEnviron(t, map[string]string{})
	if code, _, errOut := call("deadletters", "lsit"); code != 2 || !strings.Contains(errOut, `did you mean "list"?`) {
		t.Errorf("deadletters lsit: exit %d, stderr %q; want 2 and did you mean \"list\"", code, errOut)
	}
}

// Flags go before or after the positional arguments; "--" ends them.
func TestFlagsBeforeAndAfterPositionals(t *testing.T) {
	withEnviron(t, map[string]string{})
	cases := []struct {
		args      []string
		principal string
		level     string
	}{
		{[]string{"adele@contoso.com", "--log-level", "debug"}, "adele@contoso.com", "debug"},
		{[]string{"--log-level", "debug", "adele@contoso.com"}, "adele@contoso.com", "debug"},
		{[]string{"--log-level=warn", "adele@contoso.com"}, "adele@contoso.com", "warn"},
		{[]string{"--", "-adele@contoso.com"}, "-adele@contoso.com", "info"},
		{[]string{"--log-level", "error", "--", "--log-level"}, "--log-level", "error"},
	}
	for _, tc := range cases {
		c, principal, err := assignFlags("get", tc.args, io.Discard, nil)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if principal != tc.principal || c.LogLevel != tc.level {
			t.Errorf("%q: principal %q, level %q; want %q, %q", tc.args, principal, c.LogLevel, tc.principal, tc.level)
		}
	}
}

// -o/--output is one flag with one error for an unknown format, on every command that
// prints something a script may read.
func TestOutputFlagIsTheSameEverywhere(t *testing.T) {
	withEnviron(t, map[string]string{})
	cmds := [][]string{{"get", "x@contoso.com"}, {"explain", "x@contoso.com"}, {"config"}, {"subscribe", "--list"},
		{"deadletters", "list"}, {"deadletters", "show", "1"}, {"backfill"}, {"doctor"}, {"version"}}
	for _, args := range cmds {
		for _, f := range []string{"-o", "--output"} {
			code, out, errOut := call(append(append([]string{}, args...), f, "yaml")...)
			want := `invalid value "yaml" for flag ` + f[strings.LastIndex(f, "-"):] + `: must be table or json`
			if code != 2 || out != "" || !strings.Contains(errOut, want) {
				t.Errorf("%q %s yaml: exit %d, stderr %q; want 2 and %q", args, f, code, errOut, want)
			}
		}
	}
}

// JSON output is one document on stdout a script parses as a whole: get, subscribe --list,
// backfill, against the emulators.
func TestJSONOutputIsOneDocument(t *testing.T) {
	emu := startLocalEmulators(t)
	env := emulatorEnv(emu)
	env["TPE_EVENT_GRID"] = "azuresubscriptionid=11111111-2222-3333-4444-555555555555&resourcegroup=rg&partnertopic=tpe-graph&location=westeurope"
	withEnviron(t, env)

	code, out, errOut := call("backfill", "--dry-run", "-o", "json")
	var plan struct {
		Plan   []backfill.PlanRow   `json:"plan"`
		Totals *backfill.PlanTotals `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &plan); code != 0 || err != nil || len(plan.Plan) == 0 || plan.Totals == nil || !plan.Totals.DryRun {
		t.Fatalf("backfill --dry-run -o json: exit %d, %v; want one document with the plan and its totals\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
	}
	if code, _, errOut := call("backfill"); code != 0 {
		t.Fatalf("backfill: exit %d\n%s", code, errOut)
	}
	code, out, errOut = call("get", e2eAdele, "-o", "json")
	var a map[string]any
	if err := json.Unmarshal([]byte(out), &a); code != 0 || err != nil || a["principalType"] != "user" {
		t.Errorf("get -o json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if code, out, errOut := call("get", "-o", "table", e2eAdele); code != 0 || !strings.Contains(out, "PRINCIPAL TYPE") || !strings.Contains(out, e2eAdele) {
		t.Errorf("get -o table: exit %d\n%s%s", code, out, errOut)
	}

	if code, _, errOut := call("subscribe"); code != 0 {
		t.Fatalf("subscribe: exit %d\n%s", code, errOut)
	}
	code, out, errOut = call("subscribe", "--list", "-o", "json")
	var subs []map[string]any
	if err := json.Unmarshal([]byte(out), &subs); code != 0 || err != nil || len(subs) != 2 || subs[0]["expirationDateTime"] == nil {
		t.Errorf("subscribe --list -o json: exit %d, %v; want the two subscriptions\n%s%s", code, err, out, errOut)
	}
	if code, out, _ := call("subscribe", "--list"); code != 0 || !strings.Contains(out, "EXPIRES") {
		t.Errorf("subscribe --list: exit %d\n%s", code, out)
	}
}

// config runs every setting's parser and validation: an invalid value exits 1 naming the
// setting and where its value came from, and prints no configuration.
func TestConfigValidatesEveryValue(t *testing.T) {
	withEnviron(t, mergeEnv(canaryEnv, map[string]string{
		"TPE_CONCURRENCY": "many", "TPE_MAX_REVOKE_PERCENT": "lots", "TPE_LOG_LEVEL": "loud", "TPE_SCOPE_GROUPS": "not-a-guid",
	}))
	code, out, errOut := call("config", "--max-revokes", "0")
	for _, want := range []string{"TPE_CONCURRENCY (environment)", "TPE_MAX_REVOKE_PERCENT (environment)", "TPE_LOG_LEVEL (environment)",
		"TPE_SCOPE_GROUPS (environment)", "TPE_MAX_REVOKES (flag --max-revokes)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("config with invalid values: stderr lacks %q", want)
		}
	}
	if code != 1 || out != "" {
		t.Errorf("config with invalid values: exit %d (want 1), stdout %q\nstderr:\n%s", code, out, errOut)
	}
	for _, secret := range []string{canaryACSKey, canarySBKey, canaryClientState} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("config printed the secret %q", secret)
		}
	}
}

// config says where each value came from, in the table and in JSON, secrets masked.
func TestConfigShowsWhereEachValueCameFrom(t *testing.T) {
	withEnviron(t, mergeEnv(canaryEnv, map[string]string{"TPE_CONCURRENCY": "7"}))
	code, out, errOut := call("config", "--log-level", "debug")
	if code != 0 {
		t.Fatalf("config: exit %d\n%s", code, errOut)
	}
	for _, want := range [][]string{{"TPE_CONCURRENCY=7", "environment"}, {"TPE_LOG_LEVEL=debug", "flag"},
		{"ACS_API_VERSION=2025-06-30", "default"}, {"TPE_CLIENT_STATE=(set, redacted)", "environment"}} {
		line := lineWith(out, want[0])
		if !strings.Contains(line, want[1]) {
			t.Errorf("config: the line of %s is %q, want it to say %s\n%s", want[0], line, want[1], out)
		}
	}
	code, out, errOut = call("config", "-o", "json", "--log-level", "debug")
	var got []struct{ Setting, Flag, Value, Source string }
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != len(settings) {
		t.Fatalf("config -o json: exit %d, %v, %d settings\n%s%s", code, err, len(got), out, errOut)
	}
	bySetting := map[string]string{}
	for _, s := range got {
		bySetting[s.Setting] = s.Value + " from " + s.Source
	}
	for k, want := range map[string]string{"TPE_CONCURRENCY": "7 from environment", "TPE_LOG_LEVEL": "debug from flag",
		"ACS_API_VERSION": "2025-06-30 from default", "TPE_CLIENT_STATE": "(set, redacted) from environment",
		"ACS_CONNECTION_STRING": "(set, redacted) from environment", "TPE_WEBHOOK_URL": " from default"} {
		if bySetting[k] != want {
			t.Errorf("config -o json: %s = %q, want %q", k, bySetting[k], want)
		}
	}
	for _, secret := range []string{canaryACSKey, canarySBKey, canaryClientState} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("config -o json printed the secret %q", secret)
		}
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// subscribe --delete asks on a terminal and needs --yes otherwise, as deadletters purge
// does: off a terminal without --yes it exits 2 and the Graph emulator keeps every
// subscription.
func TestSubscribeDeleteNeedsYesOffATerminal(t *testing.T) {
	emu := startLocalEmulators(t)
	env := emulatorEnv(emu)
	env["TPE_EVENT_GRID"] = "azuresubscriptionid=11111111-2222-3333-4444-555555555555&resourcegroup=rg&partnertopic=tpe-graph&location=westeurope"
	withEnviron(t, env)
	if code, _, errOut := call("subscribe"); code != 0 || len(emu.graph.Subscriptions()) != 2 {
		t.Fatalf("subscribe: exit %d, %d subscriptions\n%s", code, len(emu.graph.Subscriptions()), errOut)
	}
	notTerminal(t)
	code, out, errOut := call("subscribe", "--delete")
	if code != 2 || out != "" || !strings.Contains(errOut, "pass --yes") || len(emu.graph.Subscriptions()) != 2 {
		t.Fatalf("subscribe --delete off a terminal: exit %d (want 2), %d subscriptions left (want 2)\nstderr:\n%s", code, len(emu.graph.Subscriptions()), errOut)
	}
	restore := fakeTerminal(t, "n\n")
	if code, _, errOut := call("subscribe", "--delete"); code != 1 || !strings.Contains(errOut, "not confirmed") || len(emu.graph.Subscriptions()) != 2 {
		t.Fatalf("subscribe --delete answered n: exit %d, %d subscriptions left\n%s", code, len(emu.graph.Subscriptions()), errOut)
	}
	restore()
	if code, _, errOut := call("subscribe", "--delete", "--yes"); code != 0 || len(emu.graph.Subscriptions()) != 0 {
		t.Fatalf("subscribe --delete --yes: exit %d, %d subscriptions left\n%s", code, len(emu.graph.Subscriptions()), errOut)
	}
}

// notTerminal makes stdin not a terminal for one test, whatever runs the tests.
func notTerminal(t *testing.T) {
	old := stdinIsTerminal
	stdinIsTerminal = func() bool { return false }
	t.Cleanup(func() { stdinIsTerminal = old })
}
