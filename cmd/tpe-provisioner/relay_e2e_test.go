package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// The relay subcommand on the real Service Bus client: what a caller without our
// clientState posts never reaches the queue; a genuine Graph post does.
func TestRelayQueuesOnlyTrustedNotifications(t *testing.T) {
	f := newSBFixture(t, sbtest.Options{})
	env := emulatorEnv(f.emu)
	env["SERVICEBUS_CONNECTION_STRING"] = f.sb.ConnectionString()
	env["SERVICEBUS_QUEUE"] = f.sb.Queue()
	env["TPE_RELAY_LISTEN"] = "127.0.0.1:0"
	withEnviron(t, env)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- runRelay(ctx, nil, nil, &stderr) }()
	addr := waitForLogAddr(t, &stderr, "relay listening")

	const victim = "0e5d7b6a-1111-4222-8333-944455556666"
	note := func(clientState, tenant string) string {
		return fmt.Sprintf(`{"value":[{"subscriptionId":"s","changeType":"updated","resource":"Users/%s","clientState":%q,"tenantId":%q}]}`,
			victim, clientState, tenant)
	}
	for _, tc := range []struct {
		name, contentType, body string
		want                    int
	}{
		{"a grant command", "application/json", `{"command":"grant","principal":"mallory@contoso.com"}`, 400},
		{"a forged clientState", "application/json", note("guessed", graphtest.SampleTenantID), 400},
		{"no tenant", "application/json", strings.Replace(note(localClientState, ""), `,"tenantId":""`, "", 1), 400},
		{"a trusted post sent as text", "text/plain", note(localClientState, graphtest.SampleTenantID), 415},
		{"a trusted post", "application/json", note(localClientState, graphtest.SampleTenantID), 202},
	} {
		resp, err := http.Post("http://"+addr+"/", tc.contentType, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if st := f.stats(t); st.Active != 1 {
		t.Errorf("queue holds %d messages, want only the trusted post: %+v", st.Active, st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("relay = %v after the signal\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("relay did not stop")
	}
}

// waitForLogAddr finds the addr of the first JSON log record with message msg.
func waitForLogAddr(t *testing.T, logs *lockedBuffer, msg string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == msg && rec.Addr != "" {
				return rec.Addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q in the log:\n%s", msg, logs.String())
	return ""
}
