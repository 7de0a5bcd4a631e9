package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"slices"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/internal/oracle"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// The bench's application ids: ours, which the worker manages, and another application's,
// which it must leave alone.
const (
	ourClientID   = "3c1f0b8e-6d2a-4f5b-9e71-0a8d4c2b7e15"
	otherClientID = "9b2e7d41-0c3f-4a68-8d15-6e4f2a9c1b37"
)

// benchPolicy is the local mode's policy: our client id, the sample scope group (so every
// notification costs a checkMemberGroups too), resource accounts managed.
func benchPolicy() worker.Policy {
	return worker.Policy{ClientIDs: []string{ourClientID}, ScopeGroups: []string{graphtest.ScopeGroupID},
		ManageResourceAccounts: true}
}

// seedFor is the assignment a principal holds before the run: ours (with another
// application's id too when foreign), of the kind its verdict (or, when not eligible, a
// user) calls for.
func seedFor(tenant, id string, v worker.Verdict, foreign bool) acstest.Assignment {
	a := acstest.Assignment{ObjectID: id, TenantID: tenant, PrincipalType: string(worker.PrincipalUser),
		ClientIDs: []string{ourClientID}}
	switch {
	case v.Type == worker.PrincipalResourceAccount:
		a.PrincipalType, a.ClientIDs = string(worker.PrincipalResourceAccount), nil
	case foreign:
		a.ClientIDs = append(a.ClientIDs, otherClientID)
	}
	return a
}

// seedRandom gives each principal an assignment at random: half of the eligible ones,
// and revokeShare of the others (so notifications mix grants, revokes and no-ops). One
// in ten seeded user assignments also holds another application's id. It returns the ids
// seeded with a foreign id.
func seedRandom(srv *acstest.Server, dir *graphtest.Directory, p worker.Policy, seed int64, revokeShare float64) map[string]bool {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x73656564))
	foreign := map[string]bool{}
	var as []acstest.Assignment
	for _, id := range oracle.Principals(dir) {
		v := oracle.Verdict(dir, p, id)
		share := revokeShare
		if v.Type != "" {
			share = 0.5
		}
		if rng.Float64() >= share {
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

// check compares every principal (the directory's, live and deleted, and every one ACS
// holds an assignment for) with the policy's verdict on the directory now, and returns how
// many there were and the ids that are wrong: the policy would still write, or another
// application's id was lost.
func check(srv *acstest.Server, dir *graphtest.Directory, p worker.Policy, foreign map[string]bool) (int, []string) {
	held := oracle.Held(srv, dir.TenantID())
	ids := oracle.All(dir, held)
	var wrong []string
	for _, id := range ids {
		cur := held[id]
		plan := worker.Decide(oracle.Verdict(dir, p, id), worker.CommandReconcile, cur, p)
		lost := foreign[id] && (cur == nil || !slices.Contains(cur.ClientIDs, otherClientID))
		if plan.Put != nil || plan.Delete || lost {
			wrong = append(wrong, id)
		}
	}
	return len(ids), wrong
}

// describeWrong prints up to ten wrong principals with the verdict and what ACS holds, so a
// failed run says what to look at.
func describeWrong(w io.Writer, srv *acstest.Server, dir *graphtest.Directory, p worker.Policy, wrong []string) {
	for i, id := range wrong {
		if i == 10 {
			fmt.Fprintf(w, "... and %d more\n", len(wrong)-10)
			return
		}
		var held any = "nothing"
		for _, a := range srv.Assignments() {
			if a.ObjectID == id && a.TenantID == dir.TenantID() {
				held = a
			}
		}
		_, live := dir.LookupUser(id)
		v := oracle.Verdict(dir, p, id)
		fmt.Fprintf(w, "wrong: %s live=%v verdict=%q (%s) holds %+v\n", id, live, v.Type, v.Reason, held)
	}
}
