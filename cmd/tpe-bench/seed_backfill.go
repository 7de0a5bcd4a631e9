package main

import (
	"math/rand/v2"
	"slices"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
	"github.com/tpe-provisioner/tpe-provisioner/internal/oracle"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// backfillSeed is how ACS was seeded for a backfill: how many grants and revokes the
// backfill should find, and who holds another application's id.
type backfillSeed struct {
	grants, revokes int
	foreign         map[string]bool
}

// seedBackfill seeds ACS so that grantShare of the n users need a grant and revokeShare a
// revoke, among the principals a backfill visits (scope members, resource accounts,
// deleted users); every other eligible candidate already holds its assignment. ACS has no
// list operation, so a principal outside those sets holding our id could not be found by a
// backfill: none is seeded.
func seedBackfill(srv *acstest.Server, dir *graphtest.Directory, p worker.Policy, seed int64, grantShare, revokeShare float64) backfillSeed {
	var cands []string
	for _, g := range p.ScopeGroups {
		cands = append(cands, dir.TransitiveUserMembers(g)...)
	}
	for _, u := range dir.Users() {
		if slices.ContainsFunc(u.AssignedLicenses, func(l graphtest.License) bool { return l.SkuID == graphtest.RASkuID }) {
			cands = append(cands, u.ID)
		}
	}
	for _, u := range dir.DeletedUsers() {
		cands = append(cands, u.ID)
	}
	slices.Sort(cands)
	cands = slices.Compact(cands)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6266))
	rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })

	n := len(dir.Users()) + len(dir.DeletedUsers())
	s := backfillSeed{foreign: map[string]bool{}}
	wantGrants, wantRevokes := int(grantShare*float64(n)+0.5), int(revokeShare*float64(n)+0.5)
	var as []acstest.Assignment
	for _, id := range cands {
		v := oracle.Verdict(dir, p, id)
		eligible := v.Type != ""
		switch {
		case eligible && s.grants < wantGrants:
			s.grants++
			continue
		case !eligible && s.revokes < wantRevokes:
			s.revokes++
		case !eligible:
			continue
		}
		f := v.Type != worker.PrincipalResourceAccount && rng.IntN(10) == 0
		if f {
			s.foreign[id] = true
		}
		as = append(as, seedFor(dir.TenantID(), id, v, f))
	}
	srv.Seed(as...)
	return s
}
