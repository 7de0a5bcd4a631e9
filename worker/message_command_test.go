package worker_test

import (
	"testing"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Anyone with Send on the queue may only make us look at a principal: grant and revoke
// commands are dead-lettered as untrusted, and change nothing, unless the operator turned
// queue overrides on.
func TestQueueOverridesAreRefusedByDefault(t *testing.T) {
	t.Parallel()
	ordinary := worker.User{ID: wt.OID(1), UPN: "user1@example.com", AccountEnabled: true, UserType: "Member"} // no Teams plan
	eligible := wt.TeamsUser(2)                                                                                // holds our access rightly
	newcomer := wt.TeamsUser(3)                                                                                // eligible, not yet granted
	for _, tt := range []struct {
		name       string
		overrides  bool
		wantReason string // dead-letter reason of each override, "" = completed
	}{
		{name: "default refuses grant and revoke", wantReason: worker.ReasonUntrusted},
		{name: "queue overrides enabled apply them", overrides: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := wt.NewEnv(ordinary, eligible, newcomer)
			e.ACS.Set(worker.Assignment{ObjectID: eligible.ID, PrincipalType: worker.PrincipalUser, ClientIDs: []string{wt.App}})
			src := worker.NewMemorySource([][]byte{
				worker.EncodeCommand(worker.CommandGrant, ordinary.ID, ""),
				worker.EncodeCommand(worker.CommandRevoke, eligible.ID, ""),
				worker.EncodeCommand(worker.CommandReconcile, newcomer.ID, ""),
			}, worker.FileOptions{})
			obs := &wt.Observer{}
			wt.RunToEnd(t, e.Worker(t, src, worker.Options{Observer: obs, Trust: worker.Trust{QueueOverrides: tt.overrides}}))

			if got, want := e.Granted(ordinary.ID), tt.overrides; got != want {
				t.Errorf("ordinary user granted = %v, want %v", got, want)
			}
			if got, want := e.Granted(eligible.ID), !tt.overrides; got != want {
				t.Errorf("eligible user still granted = %v, want %v", got, want)
			}
			settled := map[string]wt.Settled{}
			for _, s := range obs.Settlements() {
				settled[s.ID] = s
			}
			if len(settled) != 3 {
				t.Fatalf("settled %d messages, want 3: %+v", len(settled), settled)
			}
			for _, id := range []string{"msg-1", "msg-2"} {
				s := settled[id]
				wantOutcome := worker.OutcomeCompleted
				if tt.wantReason != "" {
					wantOutcome = worker.OutcomeDeadLettered
				}
				if s.Outcome != wantOutcome || s.Reason != tt.wantReason {
					t.Errorf("override %s settled %s/%q, want %s/%q", s.ID, s.Outcome, s.Reason, wantOutcome, tt.wantReason)
				}
			}
			if s := settled["msg-3"]; s.Outcome != worker.OutcomeCompleted || !e.Granted(newcomer.ID) {
				t.Errorf("reconcile command settled %s/%q, granted %v; want completed and granted", s.Outcome, s.Reason, e.Granted(newcomer.ID))
			}
		})
	}
}

func TestEncodeCommandDecodesToTheSameTarget(t *testing.T) {
	t.Parallel()
	for _, want := range []worker.Target{
		{Principal: "0f2a8f55-6a4b-4bdf-9b3e-5c1e2a3b4c5d", Type: worker.PrincipalResourceAccount, Command: worker.CommandReconcile, Source: "command"},
		{Principal: "ada@contoso.example", Command: worker.CommandReconcile, Source: "command"},
	} {
		body := worker.EncodeCommand(want.Command, want.Principal, want.Type)
		got, err := worker.Decode(body, nil, worker.Trust{})
		if err != nil || len(got.Principals) != 1 || got.Principals[0] != want {
			t.Errorf("EncodeCommand(%+v) = %s, decodes to %+v, %v", want, body, got.Principals, err)
		}
	}
}
