package graph_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// tokenCred hands out a fixed token and records the scopes it was asked for.
type tokenCred struct {
	token  string
	err    error
	scopes []string
}

func (c *tokenCred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.scopes = o.Scopes
	if c.err != nil {
		return azcore.AccessToken{}, c.err
	}
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Ids of the test directory.
const (
	tenant    = "8f1c3a52-3f5e-4b8a-9d2e-5b7c1e0a4d61"
	scope     = "5d0c2a4e-9b1f-4c6a-8e3d-2f7a1b9c0e11"
	nested    = "a3e7c1f0-5b2d-4e8a-9c6f-1d4b7e2a9c30"
	adeleID   = "e2a214e8-bbe9-4675-9d52-490575ffc53d"
	guestID   = "0c3f8a51-6e2d-4b9a-8f17-3a5d9e6c2b40"
	raID      = "9b4d2e7f-1c8a-4f3e-b6d5-7a2c9e1f0b83"
	agentID   = "4f6a1c9e-2b7d-4e3a-9c8f-5d1b0e7a6c21"
	outsideID = "b1d7e3a9-4c2f-4a6e-8b5d-0f9c3e2a7d14"
	goneID    = "c7e2a9d4-3b1f-4d8c-a6e5-2f0b9d7c4a38"
	teams1    = "57ff2da0-773e-42df-b2af-ffb7a2317929"
	e5        = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"
	raSku     = "440eaaa8-b3e0-484b-a8be-62870b9ba70a"
	raPlan    = "f47330e9-c134-43b3-9993-e7f004506889"
)

var deletedAt = time.Date(2026, 11, 20, 14, 12, 3, 0, time.UTC)

// testDirectory is a small tenant: Adele (Teams, in scope), a guest (Teams, in scope), a
// resource account and an agent in the nested group, a user outside the scope, and one
// soft-deleted user.
func testDirectory(t testing.TB) *graphtest.Directory {
	t.Helper()
	d := graphtest.NewDirectory(tenant)
	teams := []graphtest.Plan{{ServicePlanID: "57FF2DA0-773E-42DF-B2AF-FFB7A2317929", Service: "TeamspaceAPI", CapabilityStatus: "Enabled"}}
	users := []graphtest.UserRecord{
		{ID: adeleID, UserPrincipalName: "adele.vance@contoso.example", AccountEnabled: true, Department: "Retail",
			AssignedLicenses: []graphtest.License{{SkuID: e5}}, AssignedPlans: teams},
		{ID: guestID, UserPrincipalName: "allan_fabrikam.example#EXT#@contoso.example", AccountEnabled: true, UserType: "Guest",
			AssignedLicenses: []graphtest.License{{SkuID: e5}}, AssignedPlans: teams},
		{ID: raID, UserPrincipalName: "cq-support@contoso.example", Department: "Microsoft Communication Application Instance",
			AssignedLicenses: []graphtest.License{{SkuID: raSku}},
			AssignedPlans:    []graphtest.Plan{{ServicePlanID: raPlan, Service: "MicrosoftCommunicationsOnline", CapabilityStatus: "Enabled"}}},
		{ID: agentID, UserPrincipalName: "lee.gu@contoso.example", AccountEnabled: true,
			AssignedPlans: []graphtest.Plan{{ServicePlanID: teams1, CapabilityStatus: "Suspended"}}},
		{ID: outsideID, UserPrincipalName: "brian.johnson@contoso.example", AccountEnabled: true},
		{ID: goneID, UserPrincipalName: "bianca.pisani@contoso.example", AccountEnabled: true, AssignedPlans: teams},
	}
	for _, u := range users {
		if err := d.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	must(t, d.AddGroup(scope, "Teams Phone Extensibility", adeleID, guestID, nested))
	must(t, d.AddGroup(nested, "Contact Center Agents", raID, agentID))
	d.SetClock(func() time.Time { return deletedAt })
	must(t, d.DeleteUser(goneID))
	return d
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newClient starts an emulator over dir and a client pointed at it.
func newClient(t testing.TB, dir *graphtest.Directory, o graph.Options, opts ...graphtest.Option) (*graph.Client, *graphtest.Server) {
	t.Helper()
	srv := graphtest.NewServer(t, dir, opts...)
	o.Endpoint = srv.URL()
	c, err := graph.NewClient(&tokenCred{token: "test-token"}, &o)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func asNotFound(err error, target *interface{ NotFound() bool }) bool { return errors.As(err, target) }
