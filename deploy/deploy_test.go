// Package deploy holds tpe-provisioner's deployment assets (deploy/bicep, deploy/k8s, the
// root Dockerfile) and, as tests only, the checks that keep them in step with the binary: the
// settings `run` needs reach the process on every target, secrets travel only as secrets,
// probes hit the ops port, and the image is built with the same command as CI.
package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// runSettings are the environment variables `tpe-provisioner run` needs on a deployed worker
// authenticated with Entra ID. Left out on purpose: the key-based alternatives
// (ACS_CONNECTION_STRING, SERVICEBUS_CONNECTION_STRING) and the relay's settings
// (TPE_WEBHOOK_URL, TPE_RELAY_LISTEN).
var runSettings = []string{
	"ACS_ENDPOINT", "ACS_API_VERSION", "ACS_RESOURCE_ACCOUNT_TYPE", "GRAPH_ENDPOINT",
	"TPE_TENANT_ID", "TPE_CLIENT_IDS", "TPE_CLIENT_STATE", "TPE_SCOPE_GROUPS",
	"TPE_ALLOW_GUESTS", "TPE_MANAGE_RESOURCE_ACCOUNTS", "TPE_DRY_RUN",
	"TPE_CONCURRENCY", "TPE_MESSAGE_TIMEOUT", "TPE_SHUTDOWN_TIMEOUT", "TPE_HTTP_LISTEN",
	"TPE_RESYNC_INTERVAL", "TPE_RENEW_SUBSCRIPTIONS", "TPE_MAX_REVOKES", "TPE_MAX_REVOKE_PERCENT",
	"TPE_LOG_LEVEL", "TPE_LOG_FORMAT",
	"SERVICEBUS_NAMESPACE", "SERVICEBUS_QUEUE", "TPE_EVENT_GRID",
}

// secretSettings must never be written as plain configuration.
var secretSettings = []string{"TPE_CLIENT_STATE", "ACS_CONNECTION_STRING", "SERVICEBUS_CONNECTION_STRING"}

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

// binarySettings collects the environment variable names the binary's source declares: every
// string literal shaped like one in cmd/tpe-provisioner. It returns nil when that command has
// no source yet.
func binarySettings(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(repoPath(t, "cmd", "tpe-provisioner", "*.go"))
	envName := regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Logf("skipping %s, it does not parse yet: %v", f, err)
			continue
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
					names[s] = true
				}
			}
			return true
		})
	}
	if len(names) == 0 {
		return nil
	}
	return names
}

// TestRunSettingsAreDeclaredByTheBinary keeps runSettings honest: each name must be one the
// binary reads, so a rename in cmd/ fails here instead of silently falling back to a default.
func TestRunSettingsAreDeclaredByTheBinary(t *testing.T) {
	t.Parallel()
	known := binarySettings(t)
	if known == nil {
		t.Skip("cmd/tpe-provisioner has no parsable source yet")
	}
	for _, name := range append(slices.Clone(runSettings), secretSettings...) {
		if !known[name] {
			t.Errorf("%s is deployed but cmd/tpe-provisioner does not declare it", name)
		}
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
