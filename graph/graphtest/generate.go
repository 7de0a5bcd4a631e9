package graphtest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Well-known ids the sample and generated directories use.
const (
	SampleTenantID = "8f1c3a52-3f5e-4b8a-9d2e-5b7c1e0a4d61"
	// ScopeGroupID is the "Teams Phone Extensibility" scope group.
	ScopeGroupID = "5d0c2a4e-9b1f-4c6a-8e3d-2f7a1b9c0e11"
	// NestedGroupID is a group nested in the scope group.
	NestedGroupID = "a3e7c1f0-5b2d-4e8a-9c6f-1d4b7e2a9c30"

	TeamsPlanID  = "57ff2da0-773e-42df-b2af-ffb7a2317929" // TEAMS1
	E5SkuID      = "06ebc4ee-1bb5-47dd-8120-11324bc54e06" // SPE_E5
	MCOEVPlanID  = "4828c8ec-dc2e-4779-b502-87ac9ce28ab7" // MCOEV (Phone System)
	RASkuID      = "440eaaa8-b3e0-484b-a8be-62870b9ba70a" // PHONESYSTEM_VIRTUALUSER
	RAPlanID     = "f47330e9-c134-43b3-9993-e7f004506889" // MCOEV_VIRTUALUSER
	RADepartment = "Microsoft Communication Application Instance"
)

// Mix says which share (0..1) of a generated directory falls in each category; the rest
// are licensed, enabled Teams users. InScope is the share of live users placed in the
// scope group (half directly, half through the nested group).
type Mix struct {
	Unlicensed       float64
	Disabled         float64
	Guests           float64
	Suspended        float64 // Teams plan present with capabilityStatus "Suspended"
	ResourceAccounts float64
	Deleted          float64 // soft-deleted users (under deletedItems)
	InScope          float64
}

// DefaultMix is a plausible tenant: mostly licensed Teams users, a few of everything else.
var DefaultMix = Mix{Unlicensed: 0.10, Disabled: 0.05, Guests: 0.05, Suspended: 0.02, ResourceAccounts: 0.02, Deleted: 0.02, InScope: 0.5}

// Generate builds a synthetic directory of n users for the sample tenant, reproducible from
// seed, with the scope group (ScopeGroupID) and its nested group (NestedGroupID). Users of
// one category share their licence and plan slices (the mutations copy before changing),
// so 100,000 users stay within a few tens of MB.
func Generate(n int, seed int64, mix Mix) *Directory {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x67656e))
	d := NewDirectory(SampleTenantID)
	at := time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)
	teams := []Plan{{ServicePlanID: TeamsPlanID, Service: "TeamspaceAPI", CapabilityStatus: "Enabled", AssignedDateTime: at},
		{ServicePlanID: MCOEVPlanID, Service: "MicrosoftCommunicationsOnline", CapabilityStatus: "Enabled", AssignedDateTime: at}}
	suspended := []Plan{{ServicePlanID: TeamsPlanID, Service: "TeamspaceAPI", CapabilityStatus: "Suspended", AssignedDateTime: at}}
	ra := []Plan{{ServicePlanID: RAPlanID, Service: "MicrosoftCommunicationsOnline", CapabilityStatus: "Enabled", AssignedDateTime: at}}
	e5 := []License{{SkuID: E5SkuID}}
	raSku := []License{{SkuID: RASkuID}}

	d.groups[ScopeGroupID] = &GroupRecord{ID: ScopeGroupID, DisplayName: "Teams Phone Extensibility"}
	d.groups[NestedGroupID] = &GroupRecord{ID: NestedGroupID, DisplayName: "Contact Center Agents"}
	d.addMember(ScopeGroupID, NestedGroupID)

	for i := range n {
		u := &UserRecord{
			ID:                randomGUID(rng),
			UserPrincipalName: fmt.Sprintf("user%06d@contoso.example", i),
			AccountEnabled:    true,
			UserType:          "Member",
			AssignedLicenses:  e5,
			AssignedPlans:     teams,
		}
		switch x := rng.Float64(); {
		case x < mix.Unlicensed:
			u.AssignedLicenses, u.AssignedPlans = nil, nil
		case x < mix.Unlicensed+mix.Disabled:
			u.AccountEnabled = false
		case x < mix.Unlicensed+mix.Disabled+mix.Guests:
			u.UserType = "Guest"
			u.UserPrincipalName = fmt.Sprintf("guest%06d_fabrikam.example#EXT#@contoso.example", i)
		case x < mix.Unlicensed+mix.Disabled+mix.Guests+mix.Suspended:
			u.AssignedPlans = suspended
		case x < mix.Unlicensed+mix.Disabled+mix.Guests+mix.Suspended+mix.ResourceAccounts:
			u.UserPrincipalName = fmt.Sprintf("ra%06d@contoso.example", i)
			u.AccountEnabled, u.Department = false, RADepartment
			u.AssignedLicenses, u.AssignedPlans = raSku, ra
		}
		if rng.Float64() < mix.Deleted {
			u.DeletedDateTime = at.Add(time.Duration(rng.IntN(30*24)) * time.Hour)
			u.UserPrincipalName = DeletedUPN(u.ID, u.UserPrincipalName)
			d.deleted[u.ID] = u
			d.delOrd = append(d.delOrd, u.ID)
			continue
		}
		d.users[u.ID] = u
		d.byUPN[strings.ToLower(u.UserPrincipalName)] = u.ID // lookups lower-case the key
		d.order = append(d.order, u.ID)
		if rng.Float64() < mix.InScope {
			g := ScopeGroupID
			if rng.IntN(2) == 0 {
				g = NestedGroupID
			}
			// Appended directly: ids are new, and addMember's duplicate check is linear.
			d.groups[g].Members = append(d.groups[g].Members, u.ID)
			d.parents[u.ID] = []string{g}
		}
	}
	return d
}

// randomGUID returns a version-4 GUID, lower-case, drawn from rng.
func randomGUID(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	a = a&^0xf000 | 0x4000     // version 4
	b = b&^(0xc<<60) | 0x8<<60 // variant 10
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}
