package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The resource account's principalType: the OpenAPI enum says "resourceAccount", the Learn
// pages "teamsResourceAccount", and no public source says which one the service takes or
// how it answers. acstest in strict mode accepts exactly one spelling and answers with one
// canonical spelling; the worker, configured with ACS_RESOURCE_ACCOUNT_TYPE, runs its
// pipeline (decode, reconcile through the real acs and graph clients, settle) against it.

// newStrictE2E is newE2E with an ACS emulator that accepts only accept for a resource
// account and answers every resource account as answer.
func newStrictE2E(t *testing.T, accept, answer string) *e2eEnv {
	t.Helper()
	strict := func(o *acstest.Options) { o.AcceptResourceAccountAs, o.AnswerResourceAccountAs = accept, answer }
	dir := sampleDirectory(t)
	return &e2eEnv{acs: acstest.NewServer(t, strict), graph: graphtest.NewServer(t, dir), dir: dir, logs: &lockedBuffer{}}
}

var spellings = []string{"teamsResourceAccount", "resourceAccount"}

// Configured with the spelling the service accepts, whatever spelling it answers with:
// the resource account gets its server consent, and a replay of the same notifications
// writes nothing, because the canonical spelling read back counts as "already so".
func TestE2EResourceAccountSpellingTheServiceAccepts(t *testing.T) {
	t.Parallel()
	for _, accept := range spellings {
		for _, answer := range spellings {
			t.Run(fmt.Sprintf("accepts %s answers %s", accept, answer), func(t *testing.T) {
				t.Parallel()
				e := newStrictE2E(t, accept, answer)
				svc := e.service(t, "ACS_RESOURCE_ACCOUNT_TYPE", accept)
				bodies := [][]byte{userNote(e2eCQSupport), userNote(e2eAdele)}

				src, _ := e.drain(t, svc, bodies, worker.Options{Concurrency: 2})
				if n := len(src.DeadLetters()); n != 0 || src.Completed() != len(bodies) {
					t.Fatalf("completed %d, dead-lettered %+v; want all %d completed\nlogs:\n%s", src.Completed(), src.DeadLetters(), len(bodies), e.logs)
				}
				a, ok := e.assignment(e2eCQSupport)
				if !ok || a.PrincipalType != accept || len(a.ClientIDs) != 0 {
					t.Errorf("ACS holds %+v (found %v) for the resource account, want server consent stored as %s", a, ok, accept)
				}
				if a, ok := e.assignment(e2eAdele); !ok || a.PrincipalType != "user" {
					t.Errorf("ACS holds %+v (found %v) for the user, want her user assignment", a, ok)
				}

				writes := e.writes()
				src, _ = e.drain(t, svc, bodies, worker.Options{Concurrency: 2})
				if src.Completed() != len(bodies) || len(src.DeadLetters()) != 0 {
					t.Fatalf("replay: completed %d, dead-lettered %+v", src.Completed(), src.DeadLetters())
				}
				if got := e.writes() - writes; got != 0 {
					t.Errorf("the replay wrote %d times; reading back %q must count as already so", got, answer)
				}
			})
		}
	}
}

// Configured with the spelling the service refuses: every resource-account PUT is a 400.
// The message is not completed as a success; it is dead-lettered (reason rejected) with a
// description naming principalType, while user messages go on.
//
// Dead-letter rather than opening the circuit: the 400 refuses this principal's write, not
// the deployment's access — user reads and writes and every ACS read succeed, so the
// circuit's probe (an ACS read) would close it again at once and the message would fail on
// every try, which is the delivery-count burn the circuit exists to prevent; and pausing
// every user's onboarding for the few resource accounts would turn a partial fault into a
// total one. Nothing is lost: the dead letter keeps the message, and once
// ACS_RESOURCE_ACCOUNT_TYPE is corrected the next backfill or resync plans every resource
// account again. A 400 is only ever told apart by its status, never its text, so the
// worker cannot single out this one as systemic without guessing.
func TestE2EResourceAccountSpellingTheServiceRefuses(t *testing.T) {
	t.Parallel()
	for i, accept := range spellings {
		configured := spellings[1-i]
		t.Run("accepts "+accept+", configured "+configured, func(t *testing.T) {
			t.Parallel()
			e := newStrictE2E(t, accept, accept)
			svc := e.service(t, "ACS_RESOURCE_ACCOUNT_TYPE", configured)
			bodies := [][]byte{userNote(e2eCQSupport), userNote(e2eAdele)}

			src, rec := e.drain(t, svc, bodies, worker.Options{Concurrency: 2})
			if _, ok := e.assignment(e2eCQSupport); ok {
				t.Errorf("ACS holds an assignment for the resource account although every PUT of it was refused")
			}
			if a, ok := e.assignment(e2eAdele); !ok || a.PrincipalType != "user" {
				t.Errorf("ACS holds %+v (found %v) for the user: a resource account's refusal stopped user work", a, ok)
			}
			dead := src.DeadLetters()
			if len(dead) != 1 || src.Completed() != 1 {
				t.Fatalf("completed %d, dead-lettered %+v; want the resource account's message dead-lettered and the user's completed\nlogs:\n%s",
					src.Completed(), dead, e.logs)
			}
			d := dead[0]
			if d.MessageID != "msg-1" || d.Reason != worker.ReasonRejected {
				t.Errorf("dead letter %s reason %q, want msg-1 (the resource account's) with reason %q", d.MessageID, d.Reason, worker.ReasonRejected)
			}
			// The service's own message may not name the field; the description must say
			// what was sent, in the client's words, before any truncation.
			if !strings.Contains(d.Description, "400") || !strings.Contains(d.Description, "principalType "+configured) {
				t.Errorf("dead-letter description %q does not say that the PUT with principalType %s was refused with 400", d.Description, configured)
			}
			if got := rec.last()["msg-1"]; got != worker.OutcomeDeadLettered {
				t.Errorf("the resource account's message settled %v, want dead-lettered", got)
			}
			if strings.Contains(e.logs.String(), "circuit opened") {
				t.Errorf("the circuit opened on a per-principal refusal:\n%s", e.logs)
			}
		})
	}
}
