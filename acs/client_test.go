package acs

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/acs/acstest"
)

func TestAssignmentLifecycle(t *testing.T) {
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, nil)
	ctx := context.Background()
	user := Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{appA}}

	got, created, err := c.Put(ctx, tenant, user)
	if err != nil || !created {
		t.Fatalf("first Put() = %v, %v; want created", created, err)
	}
	if got.ObjectID != alice || got.TenantID != tenant || got.PrincipalType != PrincipalUser || !slices.Equal(got.ClientIDs, []string{appA}) {
		t.Errorf("first Put() returned %+v", got)
	}
	if got.CorrelationID == "" {
		t.Error("Put() result has no CorrelationID (ms-cv)")
	}

	user.ClientIDs = []string{appA, appB}
	if _, created, err = c.Put(ctx, tenant, user); err != nil || created {
		t.Fatalf("second Put() = %v, %v; want replaced, not created", created, err)
	}

	got, err = c.Get(ctx, tenant, alice)
	if err != nil {
		t.Fatalf("Get() error = %v", err)
	}
	if !slices.Equal(got.ClientIDs, []string{appA, appB}) || got.PrincipalType != PrincipalUser {
		t.Errorf("Get() = %+v, want the replaced user assignment (last writer wins)", got)
	}

	cv, err := c.Delete(ctx, tenant, alice)
	if err != nil || cv == "" {
		t.Fatalf("Delete() = %q, %v; want a correlation id and no error", cv, err)
	}
	if _, err = c.Get(ctx, tenant, alice); !IsNotFound(err) {
		t.Errorf("Get() after Delete error = %v, want not found", err)
	}
	if _, err = c.Delete(ctx, tenant, alice); !IsNotFound(err) || IsTemporary(err) {
		t.Errorf("second Delete() error = %v, want not found", err)
	}
	if n := len(srv.Assignments()); n != 0 {
		t.Errorf("emulator still holds %d assignments", n)
	}
}

func TestResourceAccountWireName(t *testing.T) {
	for _, wire := range []string{"", "teamsResourceAccount", "resourceAccount"} {
		t.Run("wire="+wire, func(t *testing.T) {
			srv := acstest.NewServer(t)
			c := newTestClient(t, srv, func(o *Options) { o.ResourceAccountWireName = wire })
			got, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: bob, PrincipalType: PrincipalResourceAccount})
			if err != nil {
				t.Fatal(err)
			}
			want := wire
			if want == "" {
				want = "teamsResourceAccount"
			}
			if stored := srv.Assignments()[0]; stored.PrincipalType != want || stored.ClientIDs != nil {
				t.Errorf("stored %+v, want principalType %q and no clientIds", stored, want)
			}
			if got.PrincipalType != PrincipalResourceAccount {
				t.Errorf("Put() PrincipalType = %q, want %q", got.PrincipalType, PrincipalResourceAccount)
			}
		})
	}
}

func TestGetNormalisesPrincipalType(t *testing.T) {
	tests := []struct {
		stored string
		want   PrincipalType
	}{
		{"teamsResourceAccount", PrincipalResourceAccount},
		{"TeamsResourceAccount", PrincipalResourceAccount},
		{"resourceAccount", PrincipalResourceAccount},
		{"RESOURCEACCOUNT", PrincipalResourceAccount},
		{"user", PrincipalUser},
		{"User", PrincipalUser},
		{"somethingNew", PrincipalType("somethingNew")},
	}
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, nil)
	for _, tt := range tests {
		t.Run(tt.stored, func(t *testing.T) {
			srv.Seed(acstest.Assignment{TenantID: tenant, ObjectID: alice, PrincipalType: tt.stored})
			got, err := c.Get(context.Background(), tenant, alice)
			if err != nil {
				t.Fatal(err)
			}
			if got.PrincipalType != tt.want {
				t.Errorf("PrincipalType = %q, want %q", got.PrincipalType, tt.want)
			}
		})
	}
}

// Every status the service can answer, with retries off so each is seen once.
func TestStatusClassification(t *testing.T) {
	tests := []struct {
		status                                   int
		notFound, systemic, temporary, throttled bool
	}{
		{400, false, false, false, false},
		{401, false, true, false, false},
		{403, false, true, false, false},
		{404, true, false, false, false},
		{408, false, false, true, false},
		{409, false, false, false, false},
		{429, false, false, true, true},
		{500, false, false, true, false},
		{502, false, false, true, false},
		{503, false, false, true, false},
		{504, false, false, true, false},
	}
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, func(o *Options) { o.Retry.MaxRetries = -1 })
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv.FailNext(tt.status, 0)
			_, err := c.Get(context.Background(), tenant, alice)
			var re *ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("Get() error = %v (%T), want a *ResponseError", err, err)
			}
			got := [4]bool{IsNotFound(err), IsSystemic(err), IsTemporary(err), IsThrottled(err)}
			want := [4]bool{tt.notFound, tt.systemic, tt.temporary, tt.throttled}
			if got != want {
				t.Errorf("(notFound, systemic, temporary, throttled) = %v, want %v", got, want)
			}
			if re.StatusCode != tt.status || re.ErrorCode == "" || re.CorrelationID == "" {
				t.Errorf("ResponseError = %+v, want status %d with code and ms-cv", re, tt.status)
			}
			wantPrefix := "acs: GET assignment " + alice + ": " + strconv.Itoa(tt.status) + " " + http.StatusText(tt.status) +
				" (code=" + re.ErrorCode + ", ms-cv=" + re.CorrelationID + ")"
			if !strings.HasPrefix(err.Error(), wantPrefix) {
				t.Errorf("Error() = %q, want prefix %q", err, wantPrefix)
			}
		})
	}
}

func TestSubscriptionNotAllowedIsSystemicAndNotRetried(t *testing.T) {
	srv := acstest.NewServer(t, acstest.WithSubscriptionNotAllowed())
	c := newTestClient(t, srv, nil)
	_, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{appA}})
	var re *ResponseError
	if !errors.As(err, &re) || re.ErrorCode != "SubscriptionNotAllowed" || !IsSystemic(err) || IsTemporary(err) {
		t.Fatalf("Put() error = %v, want a systemic 403 SubscriptionNotAllowed", err)
	}
	if !strings.Contains(err.Error(), "enabled for Teams Phone extensibility") {
		t.Errorf("Error() = %q, want a hint about enabling the subscription", err)
	}
	if n := srv.Counts()[http.MethodPut]; n != 1 {
		t.Errorf("PUT sent %d times, want 1 (a 403 is not retried)", n)
	}

	srv.SetSubscriptionNotAllowed(false)
	if _, _, err := c.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{appA}}); err != nil {
		t.Errorf("Put() after the subscription was enabled error = %v", err)
	}
}

func TestInvalidInputFailsBeforeSending(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		call func(*Client) error
		want string
	}{
		{"Get bad tenant", func(c *Client) error { _, err := c.Get(ctx, "contoso.onmicrosoft.com", alice); return err }, `tenant id "contoso.onmicrosoft.com" is not a GUID`},
		{"Get bad object", func(c *Client) error { _, err := c.Get(ctx, tenant, "alice@contoso.com"); return err }, `object id "alice@contoso.com" is not a GUID`},
		{"Delete path traversal", func(c *Client) error { _, err := c.Delete(ctx, tenant, "../../x"); return err }, "object id"},
		{"Put user without client ids", func(c *Client) error {
			_, _, err := c.Put(ctx, tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalUser})
			return err
		}, "needs at least one client id"},
		{"Put user with a bad client id", func(c *Client) error {
			_, _, err := c.Put(ctx, tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalUser, ClientIDs: []string{"app"}})
			return err
		}, `client id "app" is not a GUID`},
		{"Put resource account with client ids", func(c *Client) error {
			_, _, err := c.Put(ctx, tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalResourceAccount, ClientIDs: []string{appA}})
			return err
		}, "must not carry client ids"},
		{"Put unknown type", func(c *Client) error {
			_, _, err := c.Put(ctx, tenant, Assignment{ObjectID: alice, PrincipalType: "group"})
			return err
		}, `principal type "group"`},
	}
	srv := acstest.NewServer(t)
	c := newTestClient(t, srv, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(c)
			var ve *ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want a *ValidationError saying %q", err, tt.want)
			}
			if IsTemporary(err) || IsSystemic(err) || IsNotFound(err) {
				t.Errorf("error %q is not permanent", err)
			}
		})
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests were sent for invalid input", n)
	}
}

func TestAPIVersion(t *testing.T) {
	srv := acstest.NewServer(t)
	preview := newTestClient(t, srv, func(o *Options) { o.APIVersion = "2025-03-02-preview" })
	if _, _, err := preview.Put(context.Background(), tenant, Assignment{ObjectID: alice, PrincipalType: PrincipalResourceAccount}); err != nil {
		t.Errorf("Put() with the preview version error = %v", err)
	}
	old := newTestClient(t, srv, func(o *Options) { o.APIVersion = "2023-01-01" })
	_, err := old.Get(context.Background(), tenant, alice)
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || IsTemporary(err) {
		t.Fatalf("Get() with an unknown version error = %v, want a permanent 400", err)
	}
	if n := srv.Counts()[http.MethodGet]; n != 1 {
		t.Errorf("GET sent %d times, want 1 (a 400 is not retried)", n)
	}
}
