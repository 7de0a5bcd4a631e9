package main

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/internal/oracle"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The pairs traffic (chaos --pairs D): every principal starts converged, and each of n
// users is changed twice, the second change 0..D after the first, then left alone. Nothing
// else reconciles a user after its own notifications, so a stale write that survives them
// stays wrong until the resync: the traffic shows what the queue alone gets right.

// pairUsers is the number of users the pairs traffic changes so that about messages
// notifications are sent: two changes each, copies copies of each (two on average when
// copies is 0).
func pairUsers(messages, copies int) int {
	if copies <= 0 {
		copies = 2
	}
	return max(messages/(2*copies), 1)
}

// seedConverged gives every principal the assignment its verdict calls for, one in ten of
// the user assignments with another application's id too, and returns those ids.
func seedConverged(srv *acstest.Server, dir *graphtest.Directory, p worker.Policy, seed int64) map[string]bool {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x636f6e76))
	foreign := map[string]bool{}
	var as []acstest.Assignment
	for _, id := range oracle.Principals(dir) {
		v := oracle.Verdict(dir, p, id)
		if v.Type == "" {
			continue
		}
		f := v.Type != worker.PrincipalResourceAccount && rng.IntN(10) == 0
		if f {
			foreign[id] = true
		}
		as = append(as, seedFor(dir.TenantID(), id, v, f))
	}
	srv.Seed(as...)
	return foreign
}

// pairEvent is one scheduled change: the user, when, and whether it is the second.
type pairEvent struct {
	at     time.Duration
	id     string
	second bool
}

// pairs changes n random live users twice each: a pair starts every 2–5 ms, its second
// change 0..gap after its first (the first is never a deletion, so there is a user to
// change again). It returns the changes made; it stops early when ctx ends.
func (m *mutator) pairs(ctx context.Context, n int, gap time.Duration) int {
	users := m.dir.Users()
	m.rng.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	var events []pairEvent
	var at time.Duration
	for _, u := range users[:min(n, len(users))] {
		events = append(events, pairEvent{at: at, id: u.ID},
			pairEvent{at: at + time.Duration(m.rng.Int64N(int64(gap)+1)), id: u.ID, second: true})
		at += time.Duration(2+m.rng.IntN(4)) * time.Millisecond
	}
	slices.SortStableFunc(events, func(a, b pairEvent) int { return cmp.Compare(a.at, b.at) })
	start, changes := time.Now(), 0
	for _, e := range events {
		if wait := time.Until(start.Add(e.at)); wait > 0 {
			select {
			case <-ctx.Done():
				return changes
			case <-time.After(wait):
			}
		}
		u, ok := m.dir.LookupUser(e.id)
		if !ok {
			continue // deleted by the other change of the pair
		}
		m.change(u, e.second)
		changes++
	}
	return changes
}
