package acs

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

// Which resource account spelling the service takes is unconfirmed (OpenAPI
// "resourceAccount", Learn "teamsResourceAccount"). Against a strict emulator for either, a
// client configured with that spelling writes and reads back a resource account whatever
// spelling the answers use; a client configured with the other gets a permanent error that
// names principalType, never a silent success.
func TestResourceAccountUnderEitherSpelling(t *testing.T) {
	spellings := []string{"teamsResourceAccount", "resourceAccount"}
	for _, accept := range spellings {
		for _, answer := range spellings {
			t.Run("accepts "+accept+", answers "+answer, func(t *testing.T) {
				srv := acstest.NewServer(t, func(o *acstest.Options) {
					o.AcceptResourceAccountAs, o.AnswerResourceAccountAs = accept, answer
				})
				ctx := context.Background()
				c := newTestClient(t, srv, func(o *Options) { o.ResourceAccountWireName = accept })
				put, _, err := c.Put(ctx, tenant, Assignment{ObjectID: bob, PrincipalType: PrincipalResourceAccount})
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.Get(ctx, tenant, bob)
				if err != nil || got.PrincipalType != PrincipalResourceAccount || put.PrincipalType != PrincipalResourceAccount {
					t.Errorf("Put %q, Get %q (%v), want %q", put.PrincipalType, got.PrincipalType, err, PrincipalResourceAccount)
				}
				if _, _, err := c.Put(ctx, tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{appA}}); err != nil {
					t.Errorf("user Put: %v", err)
				}

				other := spellings[0]
				if other == accept {
					other = spellings[1]
				}
				wrong := newTestClient(t, srv, func(o *Options) { o.ResourceAccountWireName = other })
				_, _, err = wrong.Put(ctx, tenant, Assignment{ObjectID: "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b", PrincipalType: PrincipalResourceAccount})
				var re *ResponseError
				if !errors.As(err, &re) || re.StatusCode != 400 || re.Temporary() || re.Systemic() || !strings.Contains(err.Error(), "principalType") {
					t.Errorf("Put with %s: %v, want a permanent 400 naming principalType", other, err)
				}
			})
		}
	}
}
