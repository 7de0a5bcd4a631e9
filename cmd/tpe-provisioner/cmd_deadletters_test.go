package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/sbtest"
)

// These tests dead-letter messages on the local Service Bus endpoint with the real client,
// then drive deadletters through realMain. They swap environ, so none of them is parallel.

const dlCanaryClientState = "canary-client-state-5f1e"

type dlFixture struct {
	sb     *sbtest.Server
	client *azservicebus.Client
	env    map[string]string
}

func newDLFixture(t *testing.T) *dlFixture {
	t.Helper()
	f := &dlFixture{sb: sbtest.Start(t, sbtest.Options{LockDuration: 5 * time.Second})}
	f.client = localClient(t, f.sb)
	f.env = map[string]string{"SERVICEBUS_CONNECTION_STRING": f.sb.ConnectionString(), "SERVICEBUS_QUEUE": f.sb.Queue()}
	withEnviron(t, f.env)
	return f
}

// deadLetter sends one message and dead-letters it with reason through a receiver.
func (f *dlFixture) deadLetter(t *testing.T, m *azservicebus.Message, reason, description string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := localSender(t, f.client, f.sb.Queue()).SendMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	r, err := f.client.NewReceiverForQueue(f.sb.Queue(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	got, err := r.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("receive: %v (%d messages)", err, len(got))
	}
	if err := r.DeadLetterMessage(ctx, got[0], &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &description}); err != nil {
		t.Fatal(err)
	}
}

func (f *dlFixture) stats(t *testing.T) sbtest.Stats { return queueStats(t, f.sb) }

// seed dead-letters three messages: a command (malformed reason), a notification carrying
// the canary clientState (untrusted), and one the broker gave up on.
func (f *dlFixture) seed(t *testing.T) {
	f.deadLetter(t, &azservicebus.Message{MessageID: ptr("cmd-1"), ContentType: ptr("application/json"),
		Body:                  commandNote("reconcile", e2eAdele),
		ApplicationProperties: map[string]any{"origin": "backfill"}}, "rejected", "ACS answered 400 BadRequest")
	f.deadLetter(t, &azservicebus.Message{MessageID: ptr("note-2"),
		Body: userNoteSigned(e2eAlex, dlCanaryClientState)}, "untrusted", "clientState does not match")
	f.deadLetter(t, &azservicebus.Message{MessageID: ptr("cmd-3"), Body: commandNote("reconcile", e2eDiego)},
		"MaxDeliveryCountExceeded", "Message could not be consumed after 10 delivery attempts.")
}

func listDeadLetters(t *testing.T) []deadLetter {
	t.Helper()
	code, out, errOut := call("deadletters", "list", "-o", "json")
	if code != 0 {
		t.Fatalf("list: exit %d\n%s", code, errOut)
	}
	var got []deadLetter
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	return got
}

func TestDeadLettersListShowResubmitPurge(t *testing.T) {
	f := newDLFixture(t)
	f.seed(t)

	got := listDeadLetters(t)
	if len(got) != 3 || got[0].Reason != "rejected" || got[1].Reason != "untrusted" || got[2].Reason != "MaxDeliveryCountExceeded" {
		t.Fatalf("list = %+v", got)
	}
	if strings.Join(got[0].Principals, ",") != e2eAdele || strings.Join(got[1].Principals, ",") != e2eAlex ||
		got[0].Description != "ACS answered 400 BadRequest" || got[0].Properties["origin"] != "backfill" {
		t.Errorf("list lost what the dead letters say: %+v", got)
	}
	if _, dl := got[0].Properties["DeadLetterReason"]; dl {
		t.Errorf("list shows the dead-letter properties among the message's own: %v", got[0].Properties)
	}
	code, out, _ := call("deadletters", "list")
	if code != 0 || !strings.Contains(out, "SEQ") || !strings.Contains(out, "untrusted") || !strings.Contains(out, e2eAlex) {
		t.Errorf("list table (exit %d):\n%s", code, out)
	}

	seq := func(i int) string { return strconv.FormatInt(got[i].SequenceNumber, 10) }
	code, out, errOut := call("deadletters", "show", seq(1))
	if code != 0 || !strings.Contains(out, "untrusted") || !strings.Contains(out, `"clientState": "[redacted]"`) {
		t.Errorf("show (exit %d):\n%s%s", code, out, errOut)
	}
	assertNoSecrets(t, out+errOut, dlCanaryClientState, f.sb.ConnectionString())
	if code, _, errOut := call("deadletters", "show", "999"); code != 4 || !strings.Contains(errOut, "no dead letter with sequence number 999") {
		t.Errorf("show 999: exit %d, %s", code, errOut)
	}

	// --dry-run changes nothing; an unknown sequence number refuses the whole resubmit.
	if code, out, _ := call("deadletters", "resubmit", "--dry-run", "-o", "json"); code != 0 || strings.Count(out, "sequenceNumber") != 3 {
		t.Errorf("resubmit --dry-run: exit %d\n%s", code, out)
	}
	if code, _, errOut := call("deadletters", "resubmit", seq(0), "999"); code != 1 || !strings.Contains(errOut, "999") || !strings.Contains(errOut, "nothing changed") {
		t.Errorf("resubmit with an unknown sequence number: exit %d, %s", code, errOut)
	}
	if st := f.stats(t); st.DeadLettered != 3 || st.Active != 0 {
		t.Fatalf("after the dry run and the refusal: %+v, want 3 dead letters and nothing active", st)
	}

	// Resubmit by reason: the original body, content type and properties go back to the queue.
	code, out, errOut = call("deadletters", "resubmit", "--reason", "rejected")
	if code != 0 || !strings.Contains(errOut, "resubmitted: 1 of 1") {
		t.Fatalf("resubmit --reason rejected: exit %d\n%s%s", code, out, errOut)
	}
	if st := f.stats(t); st.DeadLettered != 2 || st.Active != 1 {
		t.Errorf("after resubmit: %+v, want 2 dead letters and 1 active", st)
	}
	m := f.receiveOne(t)
	if string(m.Body) != string(commandNote("reconcile", e2eAdele)) || deref(m.ContentType) != "application/json" ||
		m.ApplicationProperties["origin"] != "backfill" || m.ApplicationProperties[propResubmittedFrom] != "cmd-1" {
		t.Errorf("resubmitted message = body %q, content type %q, properties %v", m.Body, deref(m.ContentType), m.ApplicationProperties)
	}
	if _, dl := m.ApplicationProperties["DeadLetterReason"]; dl || m.MessageID == "cmd-1" {
		t.Errorf("resubmitted message keeps the dead-letter reason or the original id (duplicate detection would drop it): %q %v", m.MessageID, m.ApplicationProperties)
	}

	// Resubmit by sequence number, leaving the other one where it is.
	if code, _, errOut := call("deadletters", "resubmit", seq(2)); code != 0 {
		t.Fatalf("resubmit %s: exit %d\n%s", seq(2), code, errOut)
	}
	left := listDeadLetters(t)
	if len(left) != 1 || left[0].Reason != "untrusted" {
		t.Errorf("left after resubmitting two: %+v", left)
	}

	// Purge asks: without a terminal it needs --yes; a terminal's "n" keeps everything.
	notTerminal(t)
	if code, _, errOut := call("deadletters", "purge"); code != 2 || !strings.Contains(errOut, "pass --yes") {
		t.Errorf("purge without --yes: exit %d (want 2), %s", code, errOut)
	}
	if st := f.stats(t); st.DeadLettered != 1 {
		t.Fatalf("a purge without --yes deleted: %+v", st)
	}
	restoreTTY := fakeTerminal(t, "n\n")
	if code, _, errOut := call("deadletters", "purge"); code != 1 || !strings.Contains(errOut, "not confirmed") {
		t.Errorf("purge answered n: exit %d, %s", code, errOut)
	}
	restoreTTY()
	if st := f.stats(t); st.DeadLettered != 1 {
		t.Fatalf("an unconfirmed purge deleted: %+v", st)
	}
	fakeTerminal(t, "y\n")
	if code, _, errOut := call("deadletters", "purge"); code != 0 || !strings.Contains(errOut, "purged: 1 of 1") {
		t.Errorf("purge answered y: exit %d, %s", code, errOut)
	}
	if st := f.stats(t); st.DeadLettered != 0 {
		t.Errorf("after purge: %+v", st)
	}
}

func (f *dlFixture) receiveOne(t *testing.T) *azservicebus.ReceivedMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := f.client.NewReceiverForQueue(f.sb.Queue(), &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	got, err := r.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("receive the resubmitted message: %v", err)
	}
	return got[0]
}

// fakeTerminal makes purge believe stdin is a terminal holding input.
func fakeTerminal(t *testing.T, input string) func() {
	oldIn, oldTTY := confirmStdin, stdinIsTerminal
	confirmStdin, stdinIsTerminal = strings.NewReader(input), func() bool { return true }
	restore := func() { confirmStdin, stdinIsTerminal = oldIn, oldTTY }
	t.Cleanup(restore)
	return restore
}

func TestDeadLettersNamesAMissingQueueAndAWrongKey(t *testing.T) {
	f := newDLFixture(t)
	f.env["SERVICEBUS_QUEUE"] = "no-such-queue"
	code, out, errOut := call("deadletters", "list")
	if code != 1 || out != "" || !strings.Contains(errOut, "the queue does not exist") {
		t.Errorf("missing queue: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}

	f.env["SERVICEBUS_QUEUE"] = f.sb.Queue()
	const canaryKey = "Y2FuYXJ5LXNhcy1rZXktZG8tbm90LXByaW50"
	cs := f.sb.ConnectionString()
	i := strings.Index(cs, "SharedAccessKey=")
	j := strings.Index(cs[i:], ";")
	f.env["SERVICEBUS_CONNECTION_STRING"] = cs[:i] + "SharedAccessKey=" + canaryKey + cs[i+j:]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, out, errOut = call("deadletters", "list")
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("list with a wrong key did not give up within 60 s")
	}
	if code != 1 || out != "" || !strings.Contains(errOut, "Listen/Send rights") {
		t.Errorf("wrong key: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	assertNoSecrets(t, out+errOut, canaryKey, cs[i+len("SharedAccessKey="):i+j])
}

func ptr[T any](v T) *T { return &v }
