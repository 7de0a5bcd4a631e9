package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

// Canary secrets: none of them, nor the access key inside a connection string, may appear
// in anything the binary prints.
const (
	canaryACSKey      = "Q0FOQVJZLWFjcy1hY2Nlc3Mta2V5" // base64("CANARY-acs-access-key")
	canarySBKey       = "CANARY-servicebus-sas-key"
	canaryClientState = "CANARY-client-state-7f3e"
)

var canaryEnv = map[string]string{
	"ACS_CONNECTION_STRING":        "endpoint=https://canary.invalid/;accesskey=" + canaryACSKey,
	"SERVICEBUS_CONNECTION_STRING": "Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=send;SharedAccessKey=" + canarySBKey,
	"TPE_CLIENT_STATE":             canaryClientState,
}

// environMu serialises the tests that replace environ.
var environMu sync.Mutex

// withEnv runs f with environ answering from env.
func withEnv(t *testing.T, env map[string]string, f func()) {
	t.Helper()
	environMu.Lock()
	defer environMu.Unlock()
	old := environ
	environ = func(k string) string { return env[k] }
	defer func() { environ = old }()
	f()
}

func mergeEnv(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Every subcommand, over every way it prints before or instead of working: help, a usage
// error, a missing argument, a configuration error, and a start that fails.
func TestSecretsAreNeverPrinted(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const tenant = "8f1c3a52-3f5e-4b8a-9d2e-5b7c1e0a4d61"
	acs := acstest.NewServer(t) // answers 401 to the canary key
	valid := map[string]string{
		"TPE_TENANT_ID": tenant, "TPE_CLIENT_IDS": "11111111-2222-3333-4444-555555555555",
		"GRAPH_ENDPOINT": "http://127.0.0.1:1", "SERVICEBUS_QUEUE": "q", "TPE_HTTP_LISTEN": "off",
		"TPE_RESYNC_INTERVAL": "0", "TPE_LOG_LEVEL": "debug",
	}
	badConfig := map[string]string{"TPE_CONCURRENCY": "0", "TPE_LOG_FORMAT": "xml", "TPE_TENANT_ID": "not-a-guid"}
	subcommands := []string{"run", "backfill", "subscribe", "relay", "get", "grant", "revoke", "enqueue", "config", "emulate", "demo"}

	type invocation struct {
		name string
		env  map[string]string
		args []string
	}
	var cases []invocation
	for _, top := range [][]string{{}, {"-h"}, {"--help"}, {"help"}, {"no-such-command"}} {
		cases = append(cases, invocation{"top level " + strings.Join(top, " "), canaryEnv, top})
	}
	for _, sub := range subcommands {
		for _, args := range [][]string{{"-h"}, {"--help"}, {"--no-such-flag"}, {"--concurrency", "lots"}} {
			cases = append(cases, invocation{sub + " " + strings.Join(args, " "), canaryEnv, append([]string{sub}, args...)})
		}
		if sub != "config" && sub != "emulate" && sub != "demo" {
			cases = append(cases, invocation{sub + " with a configuration error", mergeEnv(canaryEnv, badConfig), []string{sub}})
		}
	}
	for _, sub := range []string{"get", "grant", "revoke", "enqueue"} {
		cases = append(cases, invocation{sub + " without its argument", mergeEnv(canaryEnv, valid), []string{sub}})
	}
	cases = append(cases,
		invocation{"get of a bad principal", mergeEnv(canaryEnv, valid), []string{"get", "not a principal"}},
		invocation{"get refused by ACS (wrong key)", mergeEnv(canaryEnv, valid, map[string]string{
			"ACS_CONNECTION_STRING": "endpoint=" + acs.URL() + "/;accesskey=" + canaryACSKey}), []string{"get", tenant}},
		invocation{"run that fails to open its source", mergeEnv(canaryEnv, valid), []string{"run", "--source", "file:" + filepath.Join(t.TempDir(), "missing")}},
		invocation{"run over an empty file", mergeEnv(canaryEnv, valid), []string{"run", "--source", "file:" + empty}},
		invocation{"relay that cannot listen", mergeEnv(canaryEnv, valid, map[string]string{"TPE_RELAY_LISTEN": "256.0.0.1:99999"}), []string{"relay"}},
		invocation{"relay with a key but no certificate", mergeEnv(canaryEnv, valid), []string{"relay", "--tls-key", "key.pem"}},
		invocation{"config", canaryEnv, []string{"config"}},
		invocation{"config --markdown", canaryEnv, []string{"config", "--markdown"}},
	)
	for _, tc := range cases {
		var stdout, stderr strings.Builder
		start := time.Now()
		withEnv(t, tc.env, func() { realMain(tc.args, &stdout, &stderr) })
		if d := time.Since(start); d > time.Second {
			t.Logf("%s took %s", tc.name, d)
		}
		out := stdout.String() + stderr.String()
		for _, secret := range []string{canaryACSKey, canarySBKey, canaryClientState} {
			if strings.Contains(out, secret) {
				t.Errorf("%s printed the secret %q:\n%s", tc.name, secret, out)
			}
		}
		if out == "" {
			t.Errorf("%s printed nothing: the case checks nothing", tc.name)
		}
	}
}
