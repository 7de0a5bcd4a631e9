package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func TestFileSourceEndToEndWithADeadLetterFile(t *testing.T) {
	t.Parallel()
	a, b, gone := wt.TeamsUser(1), wt.TeamsUser(2), wt.TeamsUser(3)
	e := wt.NewEnv(a, b)
	e.ACS.Set(worker.Assignment{ObjectID: gone.ID, PrincipalType: worker.PrincipalUser, ClientIDs: []string{wt.App}})
	forged := string(worker.EncodeNotifications(wt.Forged(b.ID)))
	input := strings.Join([]string{
		string(wt.UserNote(a.ID)), // line 1: onboard a
		"",                        // line 2: blank, skipped
		`{"value":[`,              // line 3: malformed
		forged,                    // line 4: untrusted
		"   ",                     // line 5: blank, skipped
		string(worker.EncodeCommand(worker.CommandRevoke, gone.ID, "")) + "\r", // line 6: offboard, CRLF
	}, "\n")
	var dlq bytes.Buffer
	src := worker.NewFileSource(strings.NewReader(input), &dlq, worker.FileOptions{})
	obs := &wt.Observer{}
	wt.RunToEnd(t, e.Worker(t, src, worker.Options{Observer: obs, Trust: worker.Trust{QueueOverrides: true}}))

	if !e.Granted(a.ID) || e.Granted(b.ID) || e.Granted(gone.ID) {
		t.Errorf("granted a=%v b=%v gone=%v, want true false false", e.Granted(a.ID), e.Granted(b.ID), e.Granted(gone.ID))
	}
	var ids []string
	for _, s := range obs.Settlements() {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	if want := []string{"line-1", "line-3", "line-4", "line-6"}; !slices.Equal(ids, want) {
		t.Errorf("settled ids = %v, want %v", ids, want)
	}
	type record struct {
		Line        int             `json:"line"`
		Reason      string          `json:"reason"`
		Description string          `json:"description"`
		Body        json.RawMessage `json:"body"`
	}
	var got []record
	dec := json.NewDecoder(&dlq)
	for {
		var r record
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("dead-letter file: %v", err)
		}
		got = append(got, r)
	}
	slices.SortFunc(got, func(x, y record) int { return x.Line - y.Line })
	if len(got) != 2 || got[0].Line != 3 || got[0].Reason != worker.ReasonMalformed || got[1].Line != 4 || got[1].Reason != worker.ReasonUntrusted {
		t.Fatalf("dead letters = %+v, want line 3 malformed, line 4 untrusted", got)
	}
	if got[0].Description == "" {
		t.Error("a dead letter has no description")
	}
	// A body that is not JSON is kept as a string; a JSON body as JSON.
	if string(got[0].Body) != `"{\"value\":["` {
		t.Errorf("malformed body = %s, want it as a JSON string", got[0].Body)
	}
	if !json.Valid(got[1].Body) || got[1].Body[0] != '{' {
		t.Errorf("untrusted body = %s, want the JSON object", got[1].Body)
	}
	if strings.Contains(dlq.String(), wt.ClientState) {
		t.Error("the dead-letter file holds the configured clientState")
	}
}

func TestLocalQueueRedeliversAbandonedMessagesLikeTheBroker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := worker.NewMemorySource([][]byte{[]byte("one")}, worker.FileOptions{MaxDeliveryCount: 3, Backoff: wt.NoBackoff})
	var counts []uint32
	for {
		ds, err := src.Receive(ctx, 5)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			counts = append(counts, d.DeliveryCount)
			if err := src.Abandon(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(counts, []uint32{1, 2, 3}) {
		t.Errorf("delivery counts = %v, want [1 2 3]", counts)
	}
	dead := src.DeadLetters()
	if len(dead) != 1 || dead[0].Reason != worker.ReasonMaxDeliveryCount || dead[0].MessageID != "msg-1" {
		t.Errorf("dead letters = %+v, want msg-1 %s", dead, worker.ReasonMaxDeliveryCount)
	}
}

func TestLocalQueueWaitsOutTheBackoffBeforeRedelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const backoff = 40 * time.Millisecond
	src := worker.NewMemorySource([][]byte{[]byte("one")}, worker.FileOptions{Backoff: func(int) time.Duration { return backoff }})
	ds, err := src.Receive(ctx, 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Receive = %d, %v", len(ds), err)
	}
	start := time.Now()
	if err := src.Abandon(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	ds, err = src.Receive(ctx, 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Receive = %d, %v", len(ds), err)
	}
	if waited := time.Since(start); waited < backoff {
		t.Errorf("redelivered after %v, want at least %v", waited, backoff)
	}
	if err := src.Complete(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Receive(ctx, 1); !errors.Is(err, io.EOF) {
		t.Errorf("Receive after everything settled = %v, want io.EOF", err)
	}
}

func TestFileSourceCutsHugeLines(t *testing.T) {
	t.Parallel()
	huge := `{"command":"reconcile","principal":"` + strings.Repeat("x", worker.MaxBodyBytes) + `"}`
	e := wt.NewEnv()
	src := worker.NewFileSource(strings.NewReader(huge+"\n"+string(worker.EncodeCommand(worker.CommandReconcile, wt.OID(1), ""))), nil, worker.FileOptions{})
	wt.RunToEnd(t, e.Worker(t, src, worker.Options{}))
	dead := src.DeadLetters()
	if len(dead) != 1 || dead[0].Reason != worker.ReasonTooLarge || dead[0].Line != 1 || len(dead[0].Body) != worker.MaxBodyBytes+1 {
		t.Fatalf("dead letters: %d, want line 1 %s cut to %d bytes", len(dead), worker.ReasonTooLarge, worker.MaxBodyBytes+1)
	}
	if src.Completed() != 1 {
		t.Errorf("completed = %d, want the line after the huge one", src.Completed())
	}
}

func TestFileSourceReceiveStopsWithTheContext(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe() // input that never ends, like an idle stdin
	defer pw.Close()
	src := worker.NewFileSource(pr, nil, worker.FileOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := src.Receive(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive = %v, want the context's error", err)
	}
}
