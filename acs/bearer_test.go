package acs

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

// staticToken is a TokenCredential that hands out one token, or fails when it is empty.
type staticToken string

func (s staticToken) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if s == "" {
		return azcore.AccessToken{}, errors.New("no managed identity endpoint available")
	}
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// scopeRecorder remembers the scopes it was asked for.
type scopeRecorder struct {
	staticToken
	scopes atomic.Value
}

func (s *scopeRecorder) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.scopes.Store(strings.Join(o.Scopes, " "))
	return s.staticToken.GetToken(ctx, o)
}

func TestBearerClient(t *testing.T) {
	const token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.e30.token-for-tests"
	srv := acstest.NewServer(t, acstest.WithBearerToken(token))
	cred := &scopeRecorder{staticToken: token}
	c, err := NewClient(srv.URL(), cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, created, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalResourceAccount})
	if err != nil || !created || a.PrincipalType != PrincipalResourceAccount {
		t.Fatalf("Put() = %+v, %v, %v; want a created resource-account assignment", a, created, err)
	}
	if got := cred.scopes.Load(); got != Scope {
		t.Errorf("token scopes = %v, want %q", got, Scope)
	}

	t.Run("wrong token is systemic", func(t *testing.T) {
		c, _ := NewClient(srv.URL(), staticToken("another-token"), nil)
		_, err := c.Get(context.Background(), tenant, alice)
		if !IsSystemic(err) || IsTemporary(err) {
			t.Fatalf("Get() error = %v, want systemic and not temporary", err)
		}
		if strings.Contains(err.Error(), "another-token") {
			t.Errorf("error %q repeats the token", err)
		}
	})
	t.Run("credential failure is systemic and sends nothing", func(t *testing.T) {
		before := len(srv.Requests())
		c, _ := NewClient(srv.URL(), staticToken(""), nil)
		_, err := c.Get(context.Background(), tenant, alice)
		var ce *CredentialError
		if !errors.As(err, &ce) || !IsSystemic(err) {
			t.Fatalf("Get() error = %v (%T), want a systemic *CredentialError", err, err)
		}
		if n := len(srv.Requests()) - before; n != 0 {
			t.Errorf("%d requests reached the service without a token", n)
		}
	})
}
