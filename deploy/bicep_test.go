package deploy

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Bicep CLI cannot be installed here (it downloads a binary), so these tests read the
// templates as text: line-based, comments removed. They check what the CLI would not anyway:
// that the templates match the binary and the queue rules in design.md. `az bicep build`
// remains the syntax check wherever the CLI exists (deploy/README.md).

// bicepCode returns a file's lines with // comments removed (strings kept intact).
func bicepCode(t *testing.T, path string) []string {
	t.Helper()
	lines := strings.Split(readFile(t, path), "\n")
	for i, line := range lines {
		in := false
		for j := 0; j < len(line); j++ {
			switch {
			case line[j] == '\'' && (j == 0 || line[j-1] != '\\'):
				in = !in
			case !in && strings.HasPrefix(line[j:], "//"):
				line = line[:j]
			}
		}
		lines[i] = strings.TrimRight(line, " \t\r")
	}
	return lines
}

func bicepFiles(t *testing.T) []string {
	t.Helper()
	top, _ := filepath.Glob(filepath.Join("bicep", "*.bicep"))
	mods, _ := filepath.Glob(filepath.Join("bicep", "modules", "*.bicep"))
	files := append(top, mods...)
	if len(files) < 2 {
		t.Fatalf("want deploy/bicep/main.bicep and its modules, found %v", files)
	}
	return files
}

type bicepParam struct {
	name                            string
	line                            int
	described, hasDefault, isSecure bool
	allowed                         []string
}

var paramDecl = regexp.MustCompile(`^param\s+(\w+)\s+\w+(\s*=\s*(.+))?$`)

// bicepParams lists a file's parameters with the decorators directly above each one.
func bicepParams(t *testing.T, path string) []bicepParam {
	t.Helper()
	var out []bicepParam
	var cur bicepParam
	inAllowed := false
	for i, line := range bicepCode(t, path) {
		s := strings.TrimSpace(line)
		switch {
		case inAllowed:
			if s == "])" {
				inAllowed = false
			} else {
				cur.allowed = append(cur.allowed, strings.Trim(s, "'"))
			}
		case strings.HasPrefix(s, "@description("):
			cur.described = true
		case strings.HasPrefix(s, "@secure()"):
			cur.isSecure = true
		case s == "@allowed([":
			inAllowed = true
		case strings.HasPrefix(s, "@"):
		case paramDecl.MatchString(s):
			m := paramDecl.FindStringSubmatch(s)
			cur.name, cur.line, cur.hasDefault = m[1], i+1, m[2] != ""
			out = append(out, cur)
			cur = bicepParam{}
		default:
			cur = bicepParam{}
		}
	}
	return out
}

func TestBicepParametersAreDocumentedAndUsed(t *testing.T) {
	t.Parallel()
	for _, path := range bicepFiles(t) {
		code := strings.Join(bicepCode(t, path), "\n")
		for _, p := range bicepParams(t, path) {
			if !p.described {
				t.Errorf("%s:%d: param %s has no @description", path, p.line, p.name)
			}
			uses := regexp.MustCompile(`\b`+p.name+`\b`).FindAllStringIndex(code, -1)
			if len(uses) < 2 {
				t.Errorf("%s:%d: param %s is never used", path, p.line, p.name)
			}
		}
	}
}

// TestBicepModulesGetTheirParameters checks each module call against the module's declared
// parameters: no unknown names, no required one missing.
func TestBicepModulesGetTheirParameters(t *testing.T) {
	t.Parallel()
	moduleDecl := regexp.MustCompile(`^module\s+(\w+)\s+'([^']+)'`)
	key := regexp.MustCompile(`^\s*(\w+):`)
	path := filepath.Join("bicep", "main.bicep")
	lines := bicepCode(t, path)
	for i := 0; i < len(lines); i++ {
		m := moduleDecl.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		declared := map[string]bicepParam{}
		for _, p := range bicepParams(t, filepath.Join("bicep", m[2])) {
			declared[p.name] = p
		}
		passed := map[string]bool{}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "params: {"; i++ {
		}
		depth := 1
		for i++; i < len(lines) && depth > 0; i++ {
			if k := key.FindStringSubmatch(lines[i]); k != nil && depth == 1 {
				passed[k[1]] = true
			}
			depth += strings.Count(lines[i], "{") + strings.Count(lines[i], "[") -
				strings.Count(lines[i], "}") - strings.Count(lines[i], "]")
		}
		for name := range passed {
			if _, ok := declared[name]; !ok {
				t.Errorf("module %s passes %s, which %s does not declare", m[1], name, m[2])
			}
		}
		for name, p := range declared {
			if !p.hasDefault && !passed[name] {
				t.Errorf("module %s does not pass required param %s of %s", m[1], name, m[2])
			}
		}
	}
}

var envEntry = regexp.MustCompile(`^\s*\{ name: '([A-Z][A-Z0-9_]+)', (value|secretRef): (.+) \}$`)

// bicepEnv returns the worker's environment as main.bicep declares it: name → "value" or
// "secretRef", and name → the expression.
func bicepEnv(t *testing.T) (kind, expr map[string]string) {
	t.Helper()
	kind, expr = map[string]string{}, map[string]string{}
	for _, line := range bicepCode(t, filepath.Join("bicep", "main.bicep")) {
		if m := envEntry.FindStringSubmatch(line); m != nil {
			kind[m[1]], expr[m[1]] = m[2], strings.TrimSpace(m[3])
		}
	}
	return kind, expr
}

func TestBicepWorkerGetsEveryRunSetting(t *testing.T) {
	t.Parallel()
	kind, _ := bicepEnv(t)
	d := loadDeclaration(t)
	for _, name := range append(slices.Clone(d.run), "AZURE_CLIENT_ID") {
		if kind[name] == "" {
			t.Errorf("main.bicep does not give the worker %s", name)
		}
	}
	for _, name := range d.secret {
		if kind[name] == "value" {
			t.Errorf("%s is a secret but main.bicep passes it as a plain value; use secretRef", name)
		}
	}
	for name := range kind {
		if !d.known[name] && !slices.Contains(azidentitySettings, name) {
			t.Errorf("main.bicep sets %s, which tpe-provisioner does not read", name)
		}
	}
}

// bicepProps collects "key: value" lines of a file (the last one wins per key).
func bicepProps(t *testing.T, path string) map[string]string {
	t.Helper()
	props := map[string]string{}
	prop := regexp.MustCompile(`^\s*(\w+): (.+)$`)
	for _, line := range bicepCode(t, path) {
		if m := prop.FindStringSubmatch(line); m != nil {
			props[m[1]] = m[2]
		}
	}
	return props
}

func TestBicepContainerAppProbesAndDrain(t *testing.T) {
	t.Parallel()
	_, expr := bicepEnv(t)
	path := filepath.Join("bicep", "modules", "containerapp.bicep")
	code := strings.Join(bicepCode(t, path), "\n")
	listen, _ := strconv.Unquote(`"` + strings.Trim(expr["TPE_HTTP_LISTEN"], "'") + `"`)
	if m := regexp.MustCompile(`var opsPort = (\d+)`).FindStringSubmatch(code); m == nil || ":"+m[1] != listen {
		t.Errorf("containerapp.bicep opsPort %v does not match TPE_HTTP_LISTEN %q", m, listen)
	}
	for probe, path := range map[string]string{"Liveness": "/healthz", "Readiness": "/readyz"} {
		re := regexp.MustCompile(`type: '` + probe + `'\s+httpGet: \{\s+path: '` + path + `'\s+port: opsPort`)
		if !re.MatchString(code) {
			t.Errorf("containerapp.bicep has no %s probe on %s at opsPort", probe, path)
		}
	}
	grace, _ := strconv.Atoi(bicepProps(t, path)["terminationGracePeriodSeconds"])
	drain, err := time.ParseDuration(strings.Trim(expr["TPE_SHUTDOWN_TIMEOUT"], "'"))
	if err != nil || time.Duration(grace)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds %d must exceed TPE_SHUTDOWN_TIMEOUT %s (%v)", grace, drain, err)
	}
}

func TestBicepScaleRuleUsesManagedIdentity(t *testing.T) {
	t.Parallel()
	code := strings.Join(bicepCode(t, filepath.Join("bicep", "modules", "containerapp.bicep")), "\n")
	for _, want := range []string{
		`type: 'azure-servicebus'`, `namespace: serviceBusNamespaceName`, `queueName: queueName`,
		`messageCount: '5'`, `identity: scalerIdentityId`,
		`minReplicas: minReplicas`, `maxReplicas: maxReplicas`,
	} {
		if !strings.Contains(code, want) {
			t.Errorf("containerapp.bicep lacks %s", want)
		}
	}
	// The clientState secret the env refers to must be one the app defines.
	if _, expr := bicepEnv(t); !strings.Contains(code, "name: "+expr["TPE_CLIENT_STATE"]) {
		t.Errorf("TPE_CLIENT_STATE refers to secret %s, which containerapp.bicep does not define", expr["TPE_CLIENT_STATE"])
	}
	for _, p := range bicepParams(t, filepath.Join("bicep", "main.bicep")) {
		if p.name == "minReplicas" && !slices.Equal(p.allowed, []string{"0", "1"}) {
			t.Errorf("minReplicas allows %v; want 0 or 1", p.allowed)
		}
	}
}

// isoMinutes reads PTnM / PTnS durations.
func isoMinutes(s string) (float64, error) {
	m := regexp.MustCompile(`^PT(\d+)([MS])$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not PTnM or PTnS", s)
	}
	n, _ := strconv.Atoi(m[1])
	if m[2] == "S" {
		return float64(n) / 60, nil
	}
	return float64(n), nil
}

func TestBicepQueueFollowsTheSettlementRules(t *testing.T) {
	t.Parallel()
	props := bicepProps(t, filepath.Join("bicep", "modules", "servicebus.bicep"))
	for key, want := range map[string]string{
		"tier":                             "'Standard'",
		"maxDeliveryCount":                 "10",
		"deadLetteringOnMessageExpiration": "true",
		"requiresDuplicateDetection":       "true",
		"requiresSession":                  "false", // Event Grid cannot deliver to session queues
		"lockDuration":                     "lockDuration",
	} {
		if props[key] != want {
			t.Errorf("servicebus.bicep %s = %q; want %q", key, props[key], want)
		}
	}
	if w, err := isoMinutes(strings.Trim(props["duplicateDetectionHistoryTimeWindow"], "'")); err != nil || w < 1 {
		t.Errorf("duplicate detection window %s: want at least a minute (%v)", props["duplicateDetectionHistoryTimeWindow"], err)
	}
	for _, p := range bicepParams(t, filepath.Join("bicep", "main.bicep")) {
		if p.name != "lockDuration" {
			continue
		}
		if len(p.allowed) == 0 {
			t.Error("main.bicep lockDuration has no @allowed list bounding it to PT1M..PT5M")
		}
		for _, v := range p.allowed {
			if m, err := isoMinutes(v); err != nil || m < 1 || m > 5 {
				t.Errorf("lockDuration allows %s; Service Bus locks are 1 to 5 minutes", v)
			}
		}
	}
}

func TestBicepGrantsTheRolesTheWorkerNeeds(t *testing.T) {
	t.Parallel()
	sb := strings.Join(bicepCode(t, filepath.Join("bicep", "modules", "servicebus.bicep")), "\n")
	for role, id := range map[string]string{
		"Azure Service Bus Data Receiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
		"Azure Service Bus Data Sender":   "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
	} {
		v := regexp.MustCompile(`var (\w+) = '` + id + `'`).FindStringSubmatch(sb)
		if v == nil || !strings.Contains(sb, "{ principalId: workerPrincipalId, role: "+v[1]+" }") {
			t.Errorf("servicebus.bicep does not grant the worker %s (%s)", role, id)
		}
	}
	if !strings.Contains(sb, "scope: queue") {
		t.Error("servicebus.bicep role assignments should be scoped to the queue")
	}
	for _, p := range bicepParams(t, filepath.Join("bicep", "main.bicep")) {
		if p.name == "acsRoleDefinitionId" && !p.hasDefault {
			t.Error("acsRoleDefinitionId needs a default (Contributor)")
		}
	}
	if !strings.Contains(readFile(t, filepath.Join("bicep", "main.bicep")), "param acsRoleDefinitionId string = 'b24988ac-6180-42a0-ab88-20f7382dd24c'") {
		t.Error("acsRoleDefinitionId should default to the built-in Contributor role")
	}
}

func TestBicepRoutesGraphEventsToTheQueue(t *testing.T) {
	t.Parallel()
	code := strings.Join(bicepCode(t, filepath.Join("bicep", "modules", "eventsubscription.bicep")), "\n")
	for _, want := range []string{
		"Microsoft.EventGrid/partnerTopics/eventSubscriptions@", "endpointType: 'ServiceBusQueue'",
		"resourceId: queueId", "eventDeliverySchema: 'CloudEventSchemaV1_0'",
		"'Microsoft.Graph.UserUpdated'", "'Microsoft.Graph.UserDeleted'", "'Microsoft.Graph.GroupUpdated'",
		"'Microsoft.Graph.GroupDeleted'", "'Microsoft.Graph.SubscriptionReauthorizationRequired'",
	} {
		if !strings.Contains(code, want) {
			t.Errorf("eventsubscription.bicep lacks %s", want)
		}
	}
}

func TestBicepParamFileMatchesTemplate(t *testing.T) {
	t.Parallel()
	main := map[string]bicepParam{}
	for _, p := range bicepParams(t, filepath.Join("bicep", "main.bicep")) {
		main[p.name] = p
	}
	set := map[string]string{}
	using := false
	for _, line := range bicepCode(t, filepath.Join("bicep", "main.bicepparam")) {
		if strings.TrimSpace(line) == "using 'main.bicep'" {
			using = true
		}
		if m := regexp.MustCompile(`^param (\w+) = (.+)$`).FindStringSubmatch(line); m != nil {
			set[m[1]] = m[2]
		}
	}
	if !using {
		t.Error("main.bicepparam does not say `using 'main.bicep'`")
	}
	for name, v := range set {
		p, ok := main[name]
		switch {
		case !ok:
			t.Errorf("main.bicepparam sets %s, which main.bicep does not declare", name)
		case p.isSecure && strings.HasPrefix(v, "'"):
			t.Errorf("main.bicepparam hard-codes secure param %s; read it from the environment", name)
		}
	}
	for name, p := range main {
		if !p.hasDefault {
			if _, ok := set[name]; !ok {
				t.Errorf("main.bicepparam does not set required param %s", name)
			}
		}
	}
}

// TestReadmeListsEveryParameter keeps deploy/README.md's parameter table complete and current.
func TestReadmeListsEveryParameter(t *testing.T) {
	t.Parallel()
	row := regexp.MustCompile("(?m)^\\| `(\\w+)` \\|")
	listed := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(readFile(t, "README.md"), -1) {
		listed[m[1]] = true
	}
	for _, p := range bicepParams(t, filepath.Join("bicep", "main.bicep")) {
		if !listed[p.name] {
			t.Errorf("README.md's parameter table lacks %s", p.name)
		}
		delete(listed, p.name)
	}
	for name := range listed {
		t.Errorf("README.md's parameter table lists %s, which main.bicep does not declare", name)
	}
}
