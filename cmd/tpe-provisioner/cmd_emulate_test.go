package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                         "''",
		"endpoint=http://a/;k=v==": "'endpoint=http://a/;k=v=='",
		"it's":                     `'it'\''s'`,
		"$HOME `x` \\":             "'$HOME `x` \\'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestEmulateEnvFileIsCompleteOnceItExists runs emulate with --env-file as realMain
// dispatches it: the file appears only when every emulator listens, holds export lines a
// shell sources as is (the connection string has ';'), and names the ACS emulator's URL.
func TestEmulateEnvFileIsCompleteOnceItExists(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	envFile := filepath.Join(dir, "emu.env")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- commands["emulate"].run(ctx, []string{"--env-file", envFile, "--directory", filepath.Join(repoRoot(t), localDirectory)}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(envFile); err == nil && fi.Size() > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("emulate ended: %v\nstderr:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 30s\nstderr:\n%s", envFile, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Every emulator answers as soon as the file exists.
	out, err := exec.Command(sh, "-ec", `. "$1"; printf '%s\n' "$ACS_EMULATOR_URL" "$GRAPH_ENDPOINT" "$ACS_CONNECTION_STRING" "$TPE_CLIENT_IDS"`, "sh", envFile).CombinedOutput()
	if err != nil {
		t.Fatalf("sourcing %s: %v\n%s", envFile, err, out)
	}
	vals := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(vals) != 4 || !strings.HasPrefix(vals[0], "http://127.0.0.1:") || !strings.HasPrefix(vals[1], "http://127.0.0.1:") ||
		!strings.Contains(vals[2], ";accesskey=") || vals[3] != localClientIDs {
		t.Fatalf("the sourced settings are %q", vals)
	}
	for _, u := range []string{vals[0] + "/_emulator/assignments", vals[1] + "/v1.0/users"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
	}
	if strings.Contains(stdout.String(), "ACS_CONNECTION_STRING=") && !strings.Contains(stdout.String(), "export ACS_CONNECTION_STRING='") {
		t.Errorf("stdout prints settings a shell cannot eval:\n%s", stdout.String())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 {
		t.Errorf("files next to the env file: %v, want only it (the temp file renamed)", left)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("emulate: %v", err)
	}
}
