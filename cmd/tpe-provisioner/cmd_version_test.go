package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// stamp sets the link-time version and revision for one test (not parallel).
func stamp(t *testing.T, v, r string) {
	oldV, oldR := version, revision
	version, revision = v, r
	t.Cleanup(func() { version, revision = oldV, oldR })
}

func TestVersionCommandAndFlag(t *testing.T) {
	stamp(t, "v1.4.2", "0123abcd")
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errOut := call(args...)
		if code != 0 || !strings.HasPrefix(out, "tpe-provisioner v1.4.2 (revision 0123abcd, go1.") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	code, out, _ := call("version", "-o", "json")
	var b build
	if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil || b.Version != "v1.4.2" || b.Revision != "0123abcd" {
		t.Errorf("version -o json: exit %d, %v, %+v", code, err, b)
	}
	stamp(t, "", "")
	if b := currentBuild(); b.Version == "" || b.Revision == "" {
		t.Errorf("unstamped build = %+v, want devel/unknown or the build info's values", b)
	}
}

func TestBuildInfoMetricAndStartLog(t *testing.T) {
	stamp(t, "v1.4.2", "0123abcd")
	emu := startLocalEmulators(t)
	withEnviron(t, emulatorEnv(emu))
	svc := (&e2eEnv{acs: emu.acs, graph: emu.graph, dir: emu.dir, logs: &lockedBuffer{}}).service(t)
	want := "# HELP tpe_build_info Always 1; the labels say which build of tpe-provisioner is running.\n" +
		"# TYPE tpe_build_info gauge\ntpe_build_info{revision=\"0123abcd\",version=\"v1.4.2\"} 1\n"
	if err := testutil.GatherAndCompare(svc.reg, strings.NewReader(want), "tpe_build_info"); err != nil {
		t.Error(err)
	}

	events := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(events, commandNote("reconcile", e2eAdele), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr lockedBuffer
	if code := realMain([]string{"run", "--source", "file:" + events}, &stdout, &stderr); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"build":{"version":"v1.4.2","revision":"0123abcd"}`) {
		t.Errorf("the start-up log does not name the build:\n%s", stderr.String())
	}
}

// TestReleaseBuildStampsTheVersion builds the binary with the Dockerfile's -X flags and
// asks it.
func TestReleaseBuildStampsTheVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "tpe")
	build := exec.Command(goTool, "build", "-ldflags=-X main.version=v9.9.9-test -X main.revision=feedface", "-o", bin, "./cmd/tpe-provisioner")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "tpe-provisioner v9.9.9-test (revision feedface") {
		t.Errorf("--version = %q, %v", out, err)
	}
}
