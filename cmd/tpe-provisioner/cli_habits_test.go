package main

import (
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
