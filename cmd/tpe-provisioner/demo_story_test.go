package main

import (
	"io"
	"strings"
	"testing"
)

// The README's "run it" command: the demo must tell every chapter with the right action,
// check itself, exit 0, and never print a secret.
func TestDemoTellsTheWholeStory(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo waits on a scripted Retry-After; skipped with -short")
	}
	var out strings.Builder
	if code := realMain([]string{"demo"}, &out, io.Discard); code != 0 {
		t.Fatalf("demo exit %d:\n%s", code, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"nora.newman@contoso.example      grant        teams plan enabled",
		"ivr-main@contoso.example         grant        resource account licence",
		"alex.wilber@contoso.example      revoke       no teams plan",
		"diego.siciliani@contoso.example  revoke       not found in directory",
		"grady.archie@contoso.example     revoke       out of scope",
		"isaiah.langer@contoso.example    revoke       account disabled",
		"johanna.lorenz@contoso.example   revoke       no teams plan",
		"adele.vance@contoso.example      dead_letter  untrusted",
		"ACS answered 429 ×2",
		"0 change(s) left to make",
		"final state matches the policy for every principal",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if n := strings.Count(got, "nora.newman@contoso.example      noop"); n != 3 {
		t.Errorf("duplicates: %d no-op rows for the triple notification, want 3", n)
	}
	for _, secret := range []string{"accesskey=", localClientState} {
		if strings.Contains(got, secret) {
			t.Errorf("demo output shows a secret (%q)", secret)
		}
	}
}
