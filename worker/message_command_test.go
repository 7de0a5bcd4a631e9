package worker

import (
	"testing"
)

// Anyone with Send on the queue may only make us look at a principal: grant and revoke
// commands are dead-lettered as untrusted, and change nothing, unless the operator turned
// queue overrides on.
func TestQueueOverridesAreRefusedByDefault(t *testing.T) {
	t.Parallel()
	ordinary := User{ID: rtOID(1), UPN: "user1@example.com", AccountEnabled: true, UserType: "Member"} // no Teams plan
	eligible := rtTeamsUser(2)                                                                         // holds our access rightly
	newcomer := rtTeamsUser(3)                                                                         // eligible, not yet granted
	for _, tt := range []struct {
		name       string
		overrides  bool
		wantReason string // dead-letter reason of each override, "" = completed
	}{
		{name: "default refuses grant and revoke", wantReason: ReasonUntrusted},
		{name: "queue overrides enabled apply them", overrides: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newRTEnv(ordinary, eligible, newcomer)
			e.acs.Set(Assignment{ObjectID: eligible.ID, PrincipalType: PrincipalUser, ClientIDs: []string{rtApp}})
			src := NewMemorySource([][]byte{
				rtCommand("grant", ordinary.ID),
				rtCommand("revoke", eligible.ID),
				rtCommand("reconcile", newcomer.ID),
			}, FileOptions{})
			obs := &recordingObserver{}
			runToEnd(t, e.worker(t, src, Options{Observer: obs, Trust: Trust{QueueOverrides: tt.overrides}}))

			if got, want := e.granted(ordinary.ID), tt.overrides; got != want {
				t.Errorf("ordinary user granted = %v, want %v", got, want)
			}
			if got, want := e.granted(eligible.ID), !tt.overrides; got != want {
				t.Errorf("eligible user still granted = %v, want %v", got, want)
			}
			settled := map[string]settledRecord{}
			for _, s := range obs.settled() {
				settled[s.id] = s
			}
			if len(settled) != 3 {
				t.Fatalf("settled %d messages, want 3: %+v", len(settled), settled)
			}
			for _, id := range []string{"msg-1", "msg-2"} {
				s := settled[id]
				wantOutcome := OutcomeCompleted
				if tt.wantReason != "" {
					wantOutcome = OutcomeDeadLettered
				}
				if s.outcome != wantOutcome || s.reason != tt.wantReason {
					t.Errorf("override %s settled %s/%q, want %s/%q", s.id, s.outcome, s.reason, wantOutcome, tt.wantReason)
				}
			}
			if s := settled["msg-3"]; s.outcome != OutcomeCompleted || !e.granted(newcomer.ID) {
				t.Errorf("reconcile command settled %s/%q, granted %v; want completed and granted", s.outcome, s.reason, e.granted(newcomer.ID))
			}
		})
	}
}

func TestEncodeCommandDecodesToTheSameTarget(t *testing.T) {
	t.Parallel()
	for _, want := range []Target{
		{Principal: "0f2a8f55-6a4b-4bdf-9b3e-5c1e2a3b4c5d", Type: PrincipalResourceAccount, Command: CommandReconcile, Source: "command"},
		{Principal: "ada@contoso.example", Command: CommandReconcile, Source: "command"},
	} {
		body := EncodeCommand(want.Command, want.Principal, want.Type)
		got, err := Decode(body, nil, Trust{})
		if err != nil || len(got.Principals) != 1 || got.Principals[0] != want {
			t.Errorf("EncodeCommand(%+v) = %s, decodes to %+v, %v", want, body, got.Principals, err)
		}
	}
}
