package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// jittered delays every call by a random 0–max, and one call in eight by 4–6 max more (a
// slow answer), so that replicas interleave their reads and writes the way real latencies
// make them.
type jittered struct {
	mu  sync.Mutex
	rng *rand.Rand
	max time.Duration
}

func (j *jittered) wait() {
	j.mu.Lock()
	d := time.Duration(j.rng.Int64N(int64(j.max)))
	if j.rng.IntN(8) == 0 {
		d += 4*j.max + time.Duration(j.rng.Int64N(int64(2*j.max)))
	}
	j.mu.Unlock()
	time.Sleep(d)
}

type jitteredDirectory struct {
	*wt.Directory
	j *jittered
}

func (d jitteredDirectory) User(ctx context.Context, id string) (worker.User, error) {
	d.j.wait()
	return d.Directory.User(ctx, id)
}

func (d jitteredDirectory) MemberOf(ctx context.Context, id string, groups []string) ([]string, error) {
	d.j.wait()
	return d.Directory.MemberOf(ctx, id, groups)
}

type jitteredAssignments struct {
	worker.Assignments
	j *jittered
}

func (a jitteredAssignments) Get(ctx context.Context, id string) (worker.Assignment, error) {
	a.j.wait()
	return a.Assignments.Get(ctx, id)
}

// A write lands late more often than a read answers: writes are the slow calls.
func (a jitteredAssignments) Put(ctx context.Context, as worker.Assignment) (worker.Assignment, error) {
	a.j.wait()
	a.j.wait()
	return a.Assignments.Put(ctx, as)
}

func (a jitteredAssignments) Delete(ctx context.Context, id string) (string, error) {
	a.j.wait()
	a.j.wait()
	return a.Assignments.Delete(ctx, id)
}

// Three replicas, each with its own Reconciler, share a directory and an ACS store. Users
// change twice in quick succession; each change is notified once, late by a random delay,
// to a random replica. With no resync and no later message, every principal must end as the
// policy wants: a stale write is repaired by the replica that made it.
func TestReconcileReplicasLeaveNoStaleWrite(t *testing.T) {
	t.Parallel()
	// tick scales every delay: the replicas' calls take 0–tick (one in eight 4–6 ticks
	// more), notifications arrive 0–1.5 ticks late, and the two changes of a user are
	// 0–0.75 tick apart. With the verifying read after a write removed from reconcile.go,
	// ten seeds at 500 µs failed 18 runs in 20 (five seeds at 2 ms: 1 to 4 in 6), in a
	// tenth of the time.
	const tick = 500 * time.Microsecond
	// The seeds run side by side from goroutines rather than as parallel subtests: they
	// mostly sleep, and a parallel subtest would hold one of the package's few test slots.
	var seeds sync.WaitGroup
	defer seeds.Wait()
	for seed := uint64(1); seed <= 10; seed++ {
		seeds.Go(func() { t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { replicaRun(t, seed, tick) }) })
	}
}

func replicaRun(t *testing.T, seed uint64, tick time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 7))
	p := rcPolicy
	p.ScopeGroups = []string{rcScope}
	const users = 80
	dir := wt.NewDirectory()
	var inScope []string
	for i := range users {
		dir.PutUser(wt.TeamsUser(i))
		inScope = append(inScope, wt.OID(i))
	}
	dir.SetGroup(rcScope, inScope...)
	store := wt.NewAssignments()
	j := &jittered{rng: rand.New(rand.NewPCG(seed, 11)), max: tick}
	replicas := make([]*worker.Reconciler, 3)
	for i := range replicas {
		replicas[i] = worker.NewReconciler(jitteredDirectory{dir, j}, jitteredAssignments{store, j}, p, worker.ReconcilerOptions{})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	notify := func(oid string, delay time.Duration, r *worker.Reconciler) {
		wg.Go(func() {
			time.Sleep(delay)
			if _, err := r.Reconcile(context.Background(), worker.Target{Principal: oid}); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	// Every user starts converged (no jitter: nothing races yet).
	converge := worker.NewReconciler(dir, store, p, worker.ReconcilerOptions{})
	for i := range users {
		if _, err := converge.Reconcile(context.Background(), worker.Target{Principal: wt.OID(i)}); err != nil {
			t.Fatal(err)
		}
	}
	change := func(i int) {
		u := wt.TeamsUser(i)
		switch rng.IntN(3) {
		case 0:
			u.AccountEnabled = rng.IntN(2) == 0
			dir.PutUser(u)
		case 1:
			if rng.IntN(2) == 0 {
				u.Plans = nil
			}
			dir.PutUser(u)
		default:
			mu.Lock()
			if k := slices.Index(inScope, u.ID); k >= 0 {
				inScope = slices.Delete(inScope, k, k+1)
			} else {
				inScope = append(inScope, u.ID)
			}
			dir.SetGroup(rcScope, inScope...)
			mu.Unlock()
		}
	}
	for i := range users {
		change(i)
		notify(wt.OID(i), time.Duration(rng.IntN(3000))*tick/2000, replicas[rng.IntN(3)])
		time.Sleep(time.Duration(rng.IntN(1500)) * tick / 2000)
		change(i)
		notify(wt.OID(i), time.Duration(rng.IntN(3000))*tick/2000, replicas[rng.IntN(3)])
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("reconcile: %v", err)
	}
	wrong := 0
	for i := range users {
		oid := wt.OID(i)
		u, err := dir.User(context.Background(), oid)
		if err != nil {
			t.Fatal(err)
		}
		groups, _ := dir.MemberOf(context.Background(), oid, p.ScopeGroups)
		want := worker.Eligibility(&u, len(groups) > 0, p).Type == worker.PrincipalUser
		a, ok := store.Lookup(oid)
		if has := ok && slices.Contains(a.ClientIDs, ourApp1); has != want {
			wrong++
			t.Errorf("%s: holds our access %v, the policy says %v (%+v, in scope %v)", oid, has, want, u, len(groups) > 0)
		}
	}
	if wrong > 0 {
		t.Logf("%d of %d principals wrong after %d changes", wrong, users, 2*users)
	}
}
