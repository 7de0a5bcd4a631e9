package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

func TestBackfillApplyConvergesAndSecondRunIsNoop(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	o := bfOptions(dir, acs, clock)

	sum, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	want := map[string]*worker.Assignment{
		wt.OID(1): {PrincipalType: worker.PrincipalUser, ClientIDs: []string{bfOurApp}},
		wt.OID(2): {PrincipalType: worker.PrincipalUser, ClientIDs: []string{bfOurApp}},
		wt.OID(3): nil,
		wt.OID(4): {PrincipalType: worker.PrincipalUser, ClientIDs: []string{bfForeignApp}},
		wt.OID(5): {PrincipalType: worker.PrincipalResourceAccount},
		wt.OID(6): {PrincipalType: worker.PrincipalResourceAccount},
		wt.OID(7): nil, // deleted: revoked
		wt.OID(8): nil,
		wt.OID(9): {PrincipalType: worker.PrincipalUser, ClientIDs: []string{bfOurApp}}, // outside the window
	}
	for id, w := range want {
		wt.CheckStored(t, acs, id, w)
	}
	wantApplied := map[worker.Action]int{worker.ActionGrant: 2, worker.ActionRevoke: 4}
	if !maps.Equal(sum.Applied, wantApplied) {
		t.Errorf("applied %v, want %v", sum.Applied, wantApplied)
	}
	if got := acs.Calls("Get"); got != 8+6 {
		t.Errorf("ACS Get calls = %d, want 14 (one per candidate, one more before each of the 6 writes)", got)
	}
	if sum.ACSWrites != 6 || int(sum.ACSWrites) != acs.Writes() {
		t.Errorf("summary writes %d, fake saw %d, want 6", sum.ACSWrites, acs.Writes())
	}

	writes := acs.Writes()
	again, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("second Backfill: %v", err)
	}
	if acs.Writes() != writes || again.Planned[worker.ActionNoop] != again.Candidates {
		t.Errorf("second run planned %v and wrote %d, want all noop and no write",
			again.Planned, acs.Writes()-writes)
	}
}

func TestBackfillEnqueueBatchesAndWritesNothing(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := wt.NewDirectory(), wt.NewAssignments()
	for n := 1; n <= 250; n++ {
		dir.PutUser(bfTeamsUser(n))
	}
	for n := 251; n <= 260; n++ { // noop: not enqueued
		dir.PutUser(bfTeamsUser(n))
		acs.Set(bfOurs(n))
	}
	var batches [][]worker.Target
	o := bfOptions(dir, acs, clock)
	o.Enqueue = func(_ context.Context, ts []worker.Target) error {
		batches = append(batches, slices.Clone(ts))
		return nil
	}
	sum, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	var sizes []int
	seen := map[string]bool{}
	for _, b := range batches {
		sizes = append(sizes, len(b))
		for _, tg := range b {
			if tg.Command != worker.CommandReconcile || seen[tg.Principal] {
				t.Errorf("target %+v: want one reconcile per principal", tg)
			}
			seen[tg.Principal] = true
		}
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("batch sizes %v, want [100 100 50]", sizes)
	}
	if acs.Writes() != 0 || !sum.Enqueued || sum.Applied[worker.ActionGrant] != 250 {
		t.Errorf("writes=%d enqueued=%v applied=%v; want 0 writes, 250 grants enqueued",
			acs.Writes(), sum.Enqueued, sum.Applied)
	}
}

func TestBackfillEnqueueRespectsBrake(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	var got []worker.Target
	o := bfOptions(dir, acs, clock)
	o.MaxRevokes = 1
	o.Enqueue = func(_ context.Context, ts []worker.Target) error { got = append(got, ts...); return nil }
	_, err := Run(t.Context(), o)
	if !errors.Is(err, ErrBrake) {
		t.Fatalf("err = %v, want ErrBrake", err)
	}
	if len(got) != 0 {
		t.Errorf("enqueued %v; a braked plan hands nothing to the queue", got)
	}
}

// Each write of the apply phase gets one audit record that says what the principal holds
// now and names the write's ms-cv, like a reconcile's.
func TestBackfillAuditsEachWriteWithWhatItLeft(t *testing.T) {
	clock := clk.NewInstant()
	dir, acs := bfTenant(clock.Now())
	var logs wt.LogSink
	o := bfOptions(dir, acs, clock)
	o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	if _, err := Run(t.Context(), o); err != nil {
		t.Fatalf("Backfill: %v", err)
	}
	type audit struct {
		Action     worker.Action        `json:"action"`
		AfterType  worker.PrincipalType `json:"after_type"`
		After      []string             `json:"after"`
		BeforeType worker.PrincipalType `json:"before_type"`
		MSCV       string               `json:"ms_cv"`
	}
	got := map[string]audit{}
	for line := range strings.Lines(logs.String()) {
		var rec struct {
			Msg      string `json:"msg"`
			ObjectID string `json:"object_id"`
			audit
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg == "backfill applied" {
			got[rec.ObjectID] = rec.audit
		}
	}
	want := map[string]audit{ // MSCV is checked to be the write's, "cv-N"
		wt.OID(1): {worker.ActionGrant, worker.PrincipalUser, []string{bfOurApp}, "", ""},
		wt.OID(3): {worker.ActionRevoke, "", nil, worker.PrincipalUser, ""},
		wt.OID(4): {worker.ActionRevoke, worker.PrincipalUser, []string{bfForeignApp}, worker.PrincipalUser, ""},
		wt.OID(5): {worker.ActionGrant, worker.PrincipalResourceAccount, []string{}, "", ""},
		wt.OID(7): {worker.ActionRevoke, "", nil, worker.PrincipalUser, ""},
		wt.OID(8): {worker.ActionRevoke, "", nil, worker.PrincipalUser, ""},
	}
	if len(got) != len(want) {
		t.Errorf("audited %d writes, want %d: %v", len(got), len(want), got)
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok || !strings.HasPrefix(g.MSCV, "cv-") || g.Action != w.Action || g.AfterType != w.AfterType ||
			g.BeforeType != w.BeforeType || !slices.Equal(g.After, w.After) || (g.After == nil) != (w.After == nil) {
			t.Errorf("%s audited %+v (present %v), want %+v with the write's ms-cv", id, g, ok, w)
		}
	}
}
