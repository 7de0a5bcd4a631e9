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
	rows := map[string]int{} // "principal event action reason" and "principal action reason" → count
	for _, line := range strings.Split(got, "\n") {
		if f := strings.Fields(line); len(f) >= 5 {
			rows[strings.Join(f[1:], " ")]++
			rows[f[1]+" "+strings.Join(f[3:], " ")]++
		}
	}
	for row, n := range map[string]int{
		"nora.newman@contoso.example users/updated grant teams plan enabled":    1,
		"nora.newman@contoso.example users/updated noop teams plan enabled":     3,
		"ivr-main@contoso.example users/updated grant resource account licence": 1,
		"alex.wilber@contoso.example users/updated revoke no teams plan":        1,
		// The deleted user's two notifications run concurrently: whichever is first revokes.
		"diego.siciliani@contoso.example revoke not found in directory":         1,
		"diego.siciliani@contoso.example noop not found in directory":           1,
		"grady.archie@contoso.example groups/members@delta revoke out of scope": 1,
		"isaiah.langer@contoso.example users/updated revoke account disabled":   1,
		"johanna.lorenz@contoso.example users/updated revoke no teams plan":     1,
		"adele.vance@contoso.example notification dead_letter untrusted":        1,
	} {
		if rows[row] != n {
			t.Errorf("demo table has %d row(s) %q, want %d\n%s", rows[row], row, n, got)
		}
	}
	for _, want := range []string{"ACS answered 429 ×2", "0 change(s) left to make", "final state matches the policy for every principal"} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	for _, secret := range []string{"accesskey=", localClientState} {
		if strings.Contains(got, secret) {
			t.Errorf("demo output shows a secret (%q)", secret)
		}
	}
}
