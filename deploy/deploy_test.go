// Package deploy holds tpe-provisioner's deployment assets (deploy/bicep, deploy/k8s, the
// root Dockerfile) and, as tests only, the checks that keep them in step with the binary: the
// settings `run` needs reach the process on every target, secrets travel only as secrets,
// probes hit the ops port, and the image is built with the same command as CI.
package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// runSettingsLeftOut are the settings `tpe-provisioner run` reads that a deployed worker
// authenticated with Entra ID does not get: the key-based alternatives
// (ACS_CONNECTION_STRING, SERVICEBUS_CONNECTION_STRING), the relay's webhook URL
// (TPE_WEBHOOK_URL; the targets subscribe through Event Grid), and TPE_QUEUE_OVERRIDES, which
// stays at its default (off) unless an operator deliberately trusts every sender on the queue.
var runSettingsLeftOut = []string{"ACS_CONNECTION_STRING", "SERVICEBUS_CONNECTION_STRING", "TPE_WEBHOOK_URL", "TPE_QUEUE_OVERRIDES"}

// azidentitySettings are read by DefaultAzureCredential itself, not by our Config.
var azidentitySettings = []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"}

// repoPath returns a path inside the repository; tests run in deploy/.
func repoPath(t *testing.T, parts ...string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found above deploy/: %v", err)
	}
	return filepath.Join(append([]string{root}, parts...)...)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRunSettingsAreDeclaredByTheBinary keeps the hand-kept lists honest: each name must be
// one the binary declares, so a rename in cmd/ fails here instead of silently falling back to a
// default.
func TestRunSettingsAreDeclaredByTheBinary(t *testing.T) {
	t.Parallel()
	d := loadDeclaration(t)
	names := slices.Clone(runSettingsLeftOut)
	for _, job := range singletonJobs {
		names = append(names, job.needs...)
	}
	for _, name := range names {
		if !d.known[name] {
			t.Errorf("%s is named by the deploy tests but cmd/tpe-provisioner does not declare it", name)
		}
	}
	if len(d.run) == 0 || len(d.secret) == 0 {
		t.Errorf("declaration read: %d run settings, %d secrets; want some of each", len(d.run), len(d.secret))
	}
}

// dockerInstructions returns the Dockerfile's instructions with continuation lines joined and
// comments dropped, each as [keyword, rest].
func dockerInstructions(src string) [][2]string {
	var out [][2]string
	joined := strings.ReplaceAll(src, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		out = append(out, [2]string{strings.ToUpper(kw), strings.TrimSpace(rest)})
	}
	return out
}

var goBuild = regexp.MustCompile(`CGO_ENABLED=0 go build .*\./cmd/tpe-provisioner`)

// buildCommand returns the release build command found in text, with runs of spaces folded.
func buildCommand(text string) string {
	return strings.Join(strings.Fields(goBuild.FindString(text)), " ")
}

// withoutOutput blanks the -o argument: the image writes /out/..., CI a temporary file.
func withoutOutput(cmd string) string {
	return regexp.MustCompile(`-o \S+`).ReplaceAllString(cmd, "-o OUT")
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	src := readFile(t, repoPath(t, "Dockerfile"))
	ins := dockerInstructions(src)

	var froms, users []string
	last := map[string]string{}
	var run string
	for _, in := range ins {
		switch in[0] {
		case "FROM":
			froms = append(froms, in[1])
		case "USER":
			users = append(users, in[1])
		case "RUN":
			if c := buildCommand(in[1]); c != "" {
				run = c
			}
		}
		last[in[0]] = in[1]
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:1.26 ") {
		t.Errorf("FROM = %q; want a golang:1.26 build stage and a runtime stage", froms)
	}
	if len(froms) > 0 && froms[len(froms)-1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("runtime stage = %q; want gcr.io/distroless/static-debian12:nonroot", froms[len(froms)-1])
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "root") || strings.HasPrefix(users[len(users)-1], "0") {
		t.Errorf("USER = %q; the image must end as a non-root user", users)
	}
	if got, want := last["ENTRYPOINT"], `["/tpe-provisioner"]`; got != want {
		t.Errorf("ENTRYPOINT = %s; want %s", got, want)
	}
	if got, want := last["CMD"], `["run"]`; got != want {
		t.Errorf("CMD = %s; want %s", got, want)
	}
	if got, want := last["EXPOSE"], "8080"; got != want {
		t.Errorf("EXPOSE = %s; want %s (TPE_HTTP_LISTEN's default)", got, want)
	}
	const want = `CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/tpe-provisioner ./cmd/tpe-provisioner`
	if run != want {
		t.Errorf("Dockerfile build = %q; want %q", run, want)
	}
	var commented string
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") && goBuild.MatchString(line) {
			commented = buildCommand(line)
		}
	}
	if commented != run {
		t.Errorf("the build command in the Dockerfile's comment %q differs from the one it runs %q", commented, run)
	}
}

// TestDockerfileBuildsLikeCI wants the image and CI to build the release binary with the same
// flags, so what CI tested is what ships.
func TestDockerfileBuildsLikeCI(t *testing.T) {
	t.Parallel()
	ci, err := os.ReadFile(repoPath(t, ".ci", "run"))
	if os.IsNotExist(err) {
		t.Skip(".ci/run does not exist yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	ciBuild := buildCommand(string(ci))
	if ciBuild == "" {
		t.Fatal(".ci/run has no `CGO_ENABLED=0 go build ... ./cmd/tpe-provisioner` line")
	}
	var imageBuild string
	for _, in := range dockerInstructions(readFile(t, repoPath(t, "Dockerfile"))) {
		if c := buildCommand(in[1]); in[0] == "RUN" && c != "" {
			imageBuild = c
		}
	}
	if withoutOutput(ciBuild) != withoutOutput(imageBuild) {
		t.Errorf("build commands differ (output path aside)\n .ci/run:    %s\n Dockerfile: %s", ciBuild, imageBuild)
	}
}

func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	t.Parallel()
	ignored := map[string]bool{}
	for _, line := range strings.Split(readFile(t, repoPath(t, ".dockerignore")), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ignored[strings.Trim(line, "/")] = true
		}
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd", "worker", "graph", "acs", "*.go", "**/*.go", "."} {
		if ignored[need] {
			t.Errorf(".dockerignore excludes %q, which the build needs", need)
		}
	}
	if !ignored[".git"] {
		t.Error(".dockerignore should exclude .git (size, and local state in the image context)")
	}
}
