package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The property: whatever order, duplication and temporary faults the notifications meet,
// once every message is settled each principal's assignment is what the policy derives
// from the directory as it is at the end.

const (
	propScope     = "99999999-0000-4000-8000-000000000001"
	propOtherApp  = "22222222-3333-4444-8555-666666666666"
	propRASKU     = "440eaaa8-b3e0-484b-a8be-62870b9ba70a" // PHONESYSTEM_VIRTUALUSER
	propTeamsPlan = "57ff2da0-773e-42df-b2af-ffb7a2317929" // TEAMS1
)

var propPolicy = worker.Policy{ClientIDs: []string{wt.App}, ScopeGroups: []string{propScope}, ManageResourceAccounts: true}

// propWorld is the directory a property run mutates, and the notifications its changes owe.
type propWorld struct {
	rng     *rand.Rand
	dir     *wt.Directory
	n       int
	members map[string]bool // scope group membership
	deleted map[string]bool
}

// randomUser returns one of the shapes the policy distinguishes.
func (w *propWorld) randomUser(i int) worker.User {
	u := worker.User{ID: wt.OID(i), UPN: fmt.Sprintf("p%d@example.com", i), AccountEnabled: true, UserType: "Member"}
	switch w.rng.IntN(6) {
	case 0, 1: // Teams user
		u.Plans = []worker.AssignedPlan{{ServicePlanID: propTeamsPlan, CapabilityStatus: "Enabled"}}
	case 2: // disabled Teams user
		u.AccountEnabled = false
		u.Plans = []worker.AssignedPlan{{ServicePlanID: propTeamsPlan, CapabilityStatus: "Enabled"}}
	case 3: // suspended plan
		u.Plans = []worker.AssignedPlan{{ServicePlanID: propTeamsPlan, CapabilityStatus: "Suspended"}}
	case 4: // resource account: disabled by design
		u.AccountEnabled = false
		u.SKUs = []string{propRASKU}
	case 5: // guest with Teams
		u.UserType = "Guest"
		u.Plans = []worker.AssignedPlan{{ServicePlanID: propTeamsPlan, CapabilityStatus: "Enabled"}}
	}
	return u
}

func (w *propWorld) setScope() {
	var ids []string
	for id, in := range w.members {
		if in {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	w.dir.SetGroup(propScope, ids...)
}

// mutate changes about a third of the principals and returns the notifications the
// changes cause (user notifications, and group notifications with members@delta).
func (w *propWorld) mutate() [][]byte {
	var notes [][]byte
	var added, removed []string
	for i := 1; i <= w.n; i++ {
		if w.rng.IntN(3) != 0 {
			continue
		}
		id := wt.OID(i)
		switch w.rng.IntN(4) {
		case 0: // soft-delete or restore
			if w.deleted[id] {
				w.dir.PutUser(w.randomUser(i))
			} else {
				w.dir.SoftDelete(id, time.Now())
			}
			w.deleted[id] = !w.deleted[id]
			notes = append(notes, wt.UserNote(id))
		case 1: // leave or join the scope group
			w.members[id] = !w.members[id]
			if w.members[id] {
				added = append(added, id)
			} else {
				removed = append(removed, id)
			}
		default: // licence, plan or account change
			if !w.deleted[id] {
				w.dir.PutUser(w.randomUser(i))
				notes = append(notes, wt.UserNote(id))
			}
		}
	}
	w.setScope()
	if len(added)+len(removed) > 0 {
		notes = append(notes, propGroupNote(added, removed))
	}
	return notes
}

// propGroupNote is the scope group's notification with the members added and removed.
func propGroupNote(added, removed []string) []byte {
	n := wt.Note(propScope)
	n.Group = true
	for _, id := range added {
		n.Members = append(n.Members, worker.MemberDelta{ID: id})
	}
	for _, id := range removed {
		n.Members = append(n.Members, worker.MemberDelta{ID: id, Removed: true})
	}
	return worker.EncodeNotifications(n)
}

// deliver duplicates and shuffles notes as Graph and Event Grid do, sometimes adds a
// notification for nothing and a group notification without a delta (members listed).
func (w *propWorld) deliver(notes [][]byte) [][]byte {
	var out [][]byte
	for _, n := range notes {
		for range 1 + w.rng.IntN(3) {
			out = append(out, n)
		}
	}
	for range 5 {
		out = append(out, wt.UserNote(wt.OID(1+w.rng.IntN(w.n))))
	}
	if w.rng.IntN(4) == 0 {
		g := wt.Note(propScope)
		g.Group = true
		out = append(out, worker.EncodeNotifications(g))
	}
	w.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// injectFaults scripts bursts of temporary failures for about one principal in ten.
func (w *propWorld) injectFaults(acs *wt.Assignments) {
	for i := 1; i <= w.n; i++ {
		if w.rng.IntN(10) != 0 {
			continue
		}
		id := wt.OID(i)
		kind := w.rng.IntN(4)
		// Bursts longer than the in-process retries make messages go back to the queue.
		for range 1 + w.rng.IntN(5) {
			switch kind {
			case 0:
				acs.FailNext("Get", id, wt.ErrThrottled(time.Second))
			case 1:
				acs.FailNext("Put", id, wt.ErrUnavailable())
			case 2:
				w.dir.FailNext("User", id, wt.ErrThrottled(0))
			case 3:
				w.dir.FailNext("MemberOf", id, wt.ErrUnavailable())
			}
		}
	}
}

func TestPropertyAssignmentsConvergeToThePolicy(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			checkConvergence(t, seed, 300, 4)
		})
	}
}

func checkConvergence(t *testing.T, seed uint64, n, rounds int) {
	w := &propWorld{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), dir: wt.NewDirectory(), n: n,
		members: map[string]bool{}, deleted: map[string]bool{}}
	acs := wt.NewAssignments()
	others := map[string]bool{} // principals holding another application's id: never ours to remove
	var first [][]byte
	for i := 1; i <= n; i++ {
		id := wt.OID(i)
		w.dir.PutUser(w.randomUser(i))
		w.members[id] = w.rng.IntN(4) != 0
		switch w.rng.IntN(5) { // whatever ACS holds before the worker ever ran
		case 1:
			acs.Set(worker.Assignment{ObjectID: id, PrincipalType: worker.PrincipalUser, ClientIDs: []string{wt.App}})
		case 2:
			acs.Set(worker.Assignment{ObjectID: id, PrincipalType: worker.PrincipalUser, ClientIDs: []string{propOtherApp}})
			others[id] = true
		case 3:
			acs.Set(worker.Assignment{ObjectID: id, PrincipalType: worker.PrincipalUser, ClientIDs: []string{wt.App, propOtherApp}})
			others[id] = true
		case 4:
			acs.Set(worker.Assignment{ObjectID: id, PrincipalType: worker.PrincipalResourceAccount})
		}
		first = append(first, wt.UserNote(id)) // the first resync names everyone
	}
	w.setScope()

	rec := worker.NewReconciler(w.dir, acs, propPolicy, worker.ReconcilerOptions{})
	var dead []worker.DeadLetter
	notes := first
	for round := range rounds {
		w.injectFaults(acs)
		src := worker.NewMemorySource(w.deliver(notes), worker.FileOptions{MaxDeliveryCount: 50, Backoff: wt.NoBackoff})
		wk, err := worker.New(src, rec, w.dir, worker.Options{Concurrency: 16, Trust: wt.Trust, Clock: clk.NewInstant()})
		if err != nil {
			t.Fatal(err)
		}
		// The directory keeps changing while the worker works; those changes' notifications
		// come in the next round. The last round changes nothing.
		var next [][]byte
		var mutating sync.WaitGroup
		if round < rounds-1 {
			mutating.Go(func() { next = w.mutate() })
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = wk.Run(ctx)
		timedOut := ctx.Err() != nil
		cancel()
		mutating.Wait()
		if err != nil || timedOut {
			t.Fatalf("round %d: Run = %v, timed out %v", round, err, timedOut)
		}
		dead = append(dead, src.DeadLetters()...)
		notes = next
	}
	if len(dead) != 0 {
		t.Errorf("dead letters = %+v, want none: every fault was temporary", dead[:min(3, len(dead))])
	}

	for i := 1; i <= n; i++ {
		id := wt.OID(i)
		u := w.finalUser(t, id)
		v := worker.Eligibility(u, u != nil && w.members[id], propPolicy)
		var cur *worker.Assignment
		if a, ok := acs.Lookup(id); ok {
			cur = &a
		}
		if plan := worker.Decide(v, worker.CommandReconcile, cur, propPolicy); plan.Put != nil || plan.Delete {
			t.Errorf("%s (%s): assignment %+v not converged; the policy still plans %s", id, v.Reason, cur, plan.Action)
			continue
		}
		hasOurs := cur != nil && slices.Contains(cur.ClientIDs, wt.App)
		switch {
		case v.Type == worker.PrincipalUser && cur != nil && cur.PrincipalType == worker.PrincipalUser && !hasOurs:
			t.Errorf("%s: eligible user without our client id: %+v", id, cur)
		case v.Type == "" && hasOurs:
			t.Errorf("%s (%s): not eligible but holds our client id", id, v.Reason)
		case v.Type == worker.PrincipalResourceAccount && cur == nil:
			t.Errorf("%s: resource account without its assignment", id)
		}
		if others[id] && (cur == nil || !slices.Contains(cur.ClientIDs, propOtherApp)) {
			t.Errorf("%s: another application's client id was removed: %+v", id, cur)
		}
	}
}

// finalUser reads a user as the directory holds it now, past any scripted fault left over
// (nil when it does not exist).
func (w *propWorld) finalUser(t *testing.T, id string) *worker.User {
	for range 100 {
		u, err := w.dir.User(context.Background(), id)
		switch {
		case err == nil:
			return &u
		case worker.IsNotFound(err):
			return nil
		}
	}
	t.Fatalf("user %s: the directory keeps failing", id)
	return nil
}
