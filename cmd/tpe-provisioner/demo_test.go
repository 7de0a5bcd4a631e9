package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// These tests cover what TestDemoTellsTheWholeStory (demo_story_test.go) does not: the
// README command run from the repository root with --keep-running and --verbose, the real
// access key kept out of the story and the audit log, the loud failure when the product
// does not do what the story expects, and the self-check's verdicts.

// demoOutput is a goroutine-safe writer the test reads while the demo is still running.
type demoOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *demoOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *demoOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// demoEnvLines parses the KEY=VALUE lines --keep-running prints after the story.
func demoEnvLines(out string) map[string]string {
	env := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && k != "" && k == strings.ToUpper(k) && !strings.ContainsAny(k, " \t") {
			env[k] = v
		}
	}
	return env
}

func demoGet(t *testing.T, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer local") // the Graph emulator takes any token; ACS's dump needs none
	c := &http.Client{Timeout: 5 * time.Second}
	return c.Do(req)
}

// `go run ./cmd/tpe-provisioner demo --keep-running --verbose` from the repository root:
// the story passes, the emulators stay up with the story's state until the context ends,
// the printed settings reach them, and neither the story nor the audit log shows a secret.
func TestDemoKeepRunningFromTheRepositoryRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo waits on a scripted Retry-After; skipped with -short")
	}
	root, err := demoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr demoOutput
	done := make(chan error, 1)
	go func() { done <- commands["demo"].run(ctx, []string{"--keep-running", "--verbose"}, &stdout, &stderr) }()

	deadline := time.After(20 * time.Second)
	for !strings.Contains(stdout.String(), "(Ctrl-C stops)") {
		select {
		case err := <-done:
			t.Fatalf("demo ended before keeping the emulators up: %v\n%s", err, stdout.String())
		case <-deadline:
			t.Fatalf("demo did not reach --keep-running within 20 s:\n%s", stdout.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	out := stdout.String()
	story, settings, _ := strings.Cut(out, "Emulators still running")
	env := demoEnvLines(settings)
	for _, k := range []string{"ACS_CONNECTION_STRING", "GRAPH_ENDPOINT", "TPE_TENANT_ID", "TPE_CLIENT_IDS", "TPE_CLIENT_STATE", "TPE_SCOPE_GROUPS"} {
		if env[k] == "" {
			t.Errorf("--keep-running printed no %s line:\n%s", k, settings)
		}
	}
	endpoint, key, ok := strings.Cut(strings.TrimPrefix(env["ACS_CONNECTION_STRING"], "endpoint="), ";accesskey=")
	if !ok || key == "" {
		t.Fatalf("ACS_CONNECTION_STRING %q has no access key", env["ACS_CONNECTION_STRING"])
	}

	t.Run("the story and the audit log hold no secret", func(t *testing.T) {
		for name, text := range map[string]string{"story (stdout)": story, "audit log (stderr)": stderr.String()} {
			for _, secret := range []string{key, localClientState, "accesskey="} {
				if strings.Contains(text, secret) {
					t.Errorf("the %s shows a secret (%d characters long)", name, len(secret))
				}
			}
		}
	})

	t.Run("--verbose writes the JSON audit log on stderr", func(t *testing.T) {
		recorded := false
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("stderr line is not JSON (%v): %s", err, sc.Text())
			}
			if rec["upn"] == "johanna.lorenz@contoso.example" && rec["action"] == string(worker.ActionRevoke) {
				recorded = true
			}
		}
		if !recorded {
			t.Errorf("the audit log has no revoke record for johanna.lorenz (the throttled chapter):\n%s", stderr.String())
		}
	})

	t.Run("the printed settings reach the emulators, which keep the story's state", func(t *testing.T) {
		resp, err := demoGet(t, strings.TrimSuffix(endpoint, "/")+"/_emulator/assignments")
		if err != nil {
			t.Fatalf("ACS emulator not up after the story: %v", err)
		}
		var held []json.RawMessage
		err = json.NewDecoder(resp.Body).Decode(&held)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("Final assignments in ACS (%d):", len(held)); !strings.Contains(story, want) {
			t.Errorf("the ACS emulator holds %d assignments, but the story printed another count (want %q)", len(held), want)
		}
		resp, err = demoGet(t, env["GRAPH_ENDPOINT"]+"/v1.0/users/"+noraID)
		if err != nil {
			t.Fatalf("Graph emulator not up after the story: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("Graph emulator: GET the user the story added = %d, want 200", resp.StatusCode)
		}
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo after Ctrl-C: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop within 10 s of Ctrl-C")
	}
	if resp, err := demoGet(t, strings.TrimSuffix(endpoint, "/")+"/_emulator/assignments"); err == nil {
		resp.Body.Close()
		t.Errorf("the ACS emulator still answers after the demo stopped")
	}
}

// Outside any checkout the demo cannot find the sample directory and says where to run it.
func TestDemoOutsideTheRepositorySaysWhereToRunIt(t *testing.T) {
	t.Chdir(t.TempDir())
	var out, errOut strings.Builder
	if code := realMain([]string{"demo"}, &out, &errOut); code != 1 {
		t.Fatalf("demo outside the repository: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if got := errOut.String(); !strings.Contains(got, "go run ./cmd/tpe-provisioner demo") {
		t.Errorf("stderr does not say how to run the demo:\n%s", got)
	}
}

// When the product does not do what a chapter expects, the README command must fail loudly:
// here the sample directory starts with Alex Wilber disabled, so the day-one backfill never
// grants him and the "licence removed" chapter finds nothing to revoke.
func TestDemoFailsLoudlyWhenAChapterEndsOtherwise(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo waits on a scripted Retry-After; skipped with -short")
	}
	root, err := demoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, localDirectory))
	if err != nil {
		t.Fatal(err)
	}
	var fixture map[string]any
	if err := json.Unmarshal(raw, &fixture); err != nil {
		t.Fatal(err)
	}
	disabled := false
	for _, u := range fixture["users"].([]any) {
		if u := u.(map[string]any); u["id"] == alexID {
			u["accountEnabled"], disabled = false, true
		}
	}
	if !disabled {
		t.Fatalf("the sample directory has no user %s", alexID)
	}
	checkout := t.TempDir()
	if err := os.MkdirAll(filepath.Join(checkout, filepath.Dir(localDirectory)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, "go.mod"), []byte("module demo.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, localDirectory), storyJSON(fixture), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(checkout, filepath.Dir(localDirectory))) // found by walking up

	var out strings.Builder
	if code := realMain([]string{"demo"}, &out, io.Discard); code != 1 {
		t.Fatalf("demo with a chapter that ends otherwise: exit %d, want 1\n%s", code, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"DEMO FAILED",
		"chapter 4 (licence removed): alex.wilber@contoso.example got [noop], want revoke",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Every chapter ended as expected") {
		t.Errorf("a failed demo also claims success:\n%s", got)
	}
}

// The self-check of one chapter: the expected action must happen, and only no-ops
// (duplicates, late copies) may accompany it.
func TestDemoChapterCheck(t *testing.T) {
	const chapterN = 3
	ch := chapter{title: "licence removed", want: map[string]worker.Action{alexID: worker.ActionRevoke}}
	row := func(n int, a worker.Action) storyRow { return storyRow{chapter: n, principal: alexID, action: a} }
	tests := []struct {
		name string
		rows []storyRow
		want string // "" when the chapter passes; else a fragment of the failure
	}{
		{"the expected action", []storyRow{row(chapterN, worker.ActionRevoke)}, ""},
		{"the expected action and duplicates' no-ops", []storyRow{row(chapterN, worker.ActionNoop), row(chapterN, worker.ActionRevoke), row(chapterN, worker.ActionNoop)}, ""},
		{"only no-ops", []storyRow{row(chapterN, worker.ActionNoop)}, "alex.wilber@contoso.example got [noop], want revoke"},
		{"the expected action and a contrary one", []storyRow{row(chapterN, worker.ActionRevoke), row(chapterN, worker.ActionGrant)}, "got [revoke grant], want revoke"},
		{"an error instead", []storyRow{row(chapterN, "error")}, "got [error], want revoke"},
		{"nothing happened", nil, "got [], want revoke"},
		{"the action happened in another chapter", []storyRow{row(chapterN-1, worker.ActionRevoke)}, "got [], want revoke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &story{rows: tt.rows, names: map[string]string{alexID: "alex.wilber@contoso.example"}}
			got := s.check(chapterN, ch)
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("check = %q, want no failure", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("check = %q, want one failure containing %q", got, tt.want)
			case tt.want != "" && !strings.HasPrefix(got[0], "chapter 3 (licence removed)"):
				t.Errorf("check = %q, want the failure to name the chapter", got)
			}
		})
	}
}

func storyJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the fixture's own values always marshal
	}
	return b
}
