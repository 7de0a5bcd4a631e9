package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadConfig(t *testing.T, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := c.bindFlags(fs, func(k string) string { return env[k] }); err != nil {
		return nil, err
	}
	return &c, fs.Parse(args)
}

func TestConfigPrecedence(t *testing.T) {
	env := map[string]string{
		"TPE_CONCURRENCY": "8",
		"TPE_CLIENT_IDS":  " AAAAAAAA-0000-0000-0000-000000000001 , ,bbbbbbbb-0000-0000-0000-000000000002",
		"TPE_DRY_RUN":     "true",
	}
	c, err := loadConfig(t, env, "--concurrency", "4", "--resync-interval", "0")
	if err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != 4 {
		t.Errorf("Concurrency = %d, want 4 (flag beats env)", c.Concurrency)
	}
	if !c.DryRun {
		t.Error("DryRun = false, want true from env")
	}
	if got, want := strings.Join(c.ClientIDs, ","), "aaaaaaaa-0000-0000-0000-000000000001,bbbbbbbb-0000-0000-0000-000000000002"; got != want {
		t.Errorf("ClientIDs = %s, want %s (trimmed, lower-cased, empties dropped)", got, want)
	}
	if c.ResyncInterval != 0 {
		t.Errorf("ResyncInterval = %s, want 0 (off)", c.ResyncInterval)
	}
	if c.ACSAPIVersion != "2025-06-30" || c.MessageTimeout != 2*time.Minute || c.HTTPListen != ":8080" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestConfigBadEnvNamesTheVariable(t *testing.T) {
	_, err := loadConfig(t, map[string]string{"TPE_CONCURRENCY": "many"})
	if err == nil || !strings.Contains(err.Error(), "TPE_CONCURRENCY") {
		t.Fatalf("err = %v, want it to name TPE_CONCURRENCY", err)
	}
}

func TestValidate(t *testing.T) {
	const tenant = "8f1c3a52-3f5e-4b8a-9d2e-5b7c1e0a4d61"
	base := map[string]string{
		"ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=c2VjcmV0LWtleQ==",
		"TPE_TENANT_ID":         tenant,
		"TPE_CLIENT_IDS":        "11111111-2222-3333-4444-555555555555",
	}
	tests := []struct {
		name    string
		env     map[string]string
		needs   needs
		wantErr string // substring; empty = valid
	}{
		{"complete", nil, needs{acs: true, clientIDs: true, graph: true}, ""},
		{"no acs", map[string]string{"ACS_CONNECTION_STRING": ""}, needs{acs: true}, "ACS_CONNECTION_STRING"},
		{"bad tenant", map[string]string{"TPE_TENANT_ID": "contoso"}, needs{acs: true}, "TPE_TENANT_ID"},
		{"bad client id", map[string]string{"TPE_CLIENT_IDS": "app"}, needs{clientIDs: true}, "TPE_CLIENT_IDS"},
		{"http graph off loopback", map[string]string{"GRAPH_ENDPOINT": "http://graph.example.com"}, needs{graph: true}, "loopback"},
		{"http graph on loopback", map[string]string{"GRAPH_ENDPOINT": "http://127.0.0.1:9"}, needs{graph: true}, ""},
		{"run without a queue points at demo", nil, needs{source: true}, "demo"},
		{"queue by connection string", map[string]string{"SERVICEBUS_CONNECTION_STRING": "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=topsecret", "SERVICEBUS_QUEUE": "q"}, needs{source: true}, ""},
		{"bad resource account type", map[string]string{"ACS_RESOURCE_ACCOUNT_TYPE": "bot"}, needs{}, "ACS_RESOURCE_ACCOUNT_TYPE"},
		{"bad percent", map[string]string{"TPE_MAX_REVOKE_PERCENT": "150"}, needs{}, "TPE_MAX_REVOKE_PERCENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := loadConfig(t, env)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(tt.needs)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error naming %q", err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "c2VjcmV0LWtleQ") || strings.Contains(err.Error(), "topsecret")) {
				t.Fatalf("Validate() leaked a secret: %v", err)
			}
		})
	}
}

func TestEverySettingHasEnvFlagAndUsage(t *testing.T) {
	seenEnv, seenFlag := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		if s.env == "" || s.flag == "" || s.usage == "" {
			t.Errorf("incomplete setting %+v", s)
		}
		if seenEnv[s.env] || seenFlag[s.flag] {
			t.Errorf("duplicate setting %s / --%s", s.env, s.flag)
		}
		seenEnv[s.env], seenFlag[s.flag] = true, true
	}
}

func TestConfigCommandRedactsSecrets(t *testing.T) {
	old := environ
	environ = func(k string) string {
		return map[string]string{
			"ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=c2VjcmV0LWtleQ==",
			"TPE_CLIENT_STATE":      "s3cr3t-state",
			"TPE_CONCURRENCY":       "7",
		}[k]
	}
	defer func() { environ = old }()
	var out strings.Builder
	if code := realMain([]string{"config"}, &out, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	got := out.String()
	if strings.Contains(got, "c2VjcmV0LWtleQ") || strings.Contains(got, "s3cr3t-state") {
		t.Fatalf("config printed a secret:\n%s", got)
	}
	for _, want := range []string{"TPE_CONCURRENCY=7", "TPE_CLIENT_STATE=(set, redacted)", "ACS_API_VERSION=2025-06-30"} {
		if !strings.Contains(got, want) {
			t.Errorf("config output lacks %q:\n%s", want, got)
		}
	}
}

// The README's configuration table is generated by `config --markdown`; this keeps it current.
func TestREADMEConfigurationTableIsCurrent(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if code := realMain([]string{"config", "--markdown"}, &table, io.Discard); code != 0 {
		t.Fatalf("config --markdown exit %d", code)
	}
	if !strings.Contains(string(readme), table.String()) {
		t.Fatal("README.md's configuration table is stale: replace it with the output of `go run ./cmd/tpe-provisioner config --markdown`")
	}
}

// Half a TLS pair is a mistake, not a request for plain HTTP.
func TestRelayRefusesHalfATLSPair(t *testing.T) {
	for _, args := range [][]string{{"--tls-key", "key.pem"}, {"--tls-cert", "cert.pem"}} {
		var stderr strings.Builder
		withEnv(t, map[string]string{"TPE_RELAY_LISTEN": "127.0.0.1:0"}, func() {
			if code := realMain(append([]string{"relay"}, args...), io.Discard, &stderr); code != 1 {
				t.Errorf("relay %v: exit %d, want 1", args, code)
			}
		})
		if !strings.Contains(stderr.String(), "--tls-cert and --tls-key go together") {
			t.Errorf("relay %v: stderr %q does not say both are needed", args, stderr.String())
		}
	}
}

// run reads notifications, which are only believed with a clientState: without one it
// does not start.
func TestRunRequiresAClientState(t *testing.T) {
	var stderr strings.Builder
	withEnv(t, map[string]string{
		"ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=a2V5",
		"TPE_TENANT_ID":         "8f1c3a52-3f5e-4b8a-9d2e-5b7c1e0a4d61", "TPE_CLIENT_IDS": "11111111-2222-3333-4444-555555555555",
	}, func() {
		if code := realMain([]string{"run", "--source", "file:-"}, io.Discard, &stderr); code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	})
	if !strings.Contains(stderr.String(), "TPE_CLIENT_STATE") {
		t.Errorf("stderr %q does not name TPE_CLIENT_STATE", stderr.String())
	}
}

// A principal that would show differently from what it is (bidirectional overrides,
// controls) is refused at the CLI before anything is read or written.
func TestCLIRefusesInvisibleCharactersInAUPN(t *testing.T) {
	for _, verb := range []string{"get", "grant", "revoke"} {
		var stderr strings.Builder
		withEnv(t, map[string]string{
			"ACS_CONNECTION_STRING": "endpoint=https://x.communication.azure.com/;accesskey=a2V5",
			"TPE_TENANT_ID":         "8f1c3a52-3f5e-4b8a-9d2e-5b7c1e0a4d61", "TPE_CLIENT_IDS": "11111111-2222-3333-4444-555555555555",
			"GRAPH_ENDPOINT": "http://127.0.0.1:1",
		}, func() {
			if code := realMain([]string{verb, "ad\u202emin@contoso.com"}, io.Discard, &stderr); code != 1 {
				t.Errorf("%s: exit %d, want 1", verb, code)
			}
		})
		if !strings.Contains(stderr.String(), "neither an object id") || strings.Contains(stderr.String(), "\u202e") {
			t.Errorf("%s: stderr %q, want the principal refused and shown escaped", verb, stderr.String())
		}
	}
}
