package graph_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

// A user read lacking a property we selected is temporary: decoded as false or empty it
// would read as "disabled" or "no plan" and revoke.
func TestUserLackingSelectedPropertyIsTemporary(t *testing.T) {
	t.Parallel()
	for _, prop := range []string{"id", "userPrincipalName", "accountEnabled", "assignedLicenses", "assignedPlans", "userType", "department"} {
		t.Run(prop, func(t *testing.T) {
			t.Parallel()
			c, srv := newClient(t, testDirectory(t), graph.Options{})
			srv.StripProperty(prop)
			u, err := c.User(context.Background(), adeleID)
			if got := classify(err); got != (behaviour{temporary: true}) {
				t.Fatalf("behaviour = %+v, user %+v, want a temporary error (err %v)", got, u, err)
			}
			var ge *graph.Error
			if !errors.As(err, &ge) || !ge.Incomplete() {
				t.Errorf("err %v: want a *graph.Error whose Incomplete is true", err)
			}
			srv.ClearFaults()
			if _, err := c.User(context.Background(), adeleID); err != nil {
				t.Errorf("after the fault cleared: %v", err)
			}
		})
	}
}

// Properties whose null is a real answer (Graph returns null for an unset department or
// userType) decode as empty; a null where the policy needs a value is incomplete.
func TestUserNullProperties(t *testing.T) {
	t.Parallel()
	base := `"id":"` + adeleID + `","userPrincipalName":"adele.vance@contoso.example","assignedLicenses":[],"assignedPlans":[]`
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"null department and userType", `{` + base + `,"accountEnabled":true,"userType":null,"department":null}`, true},
		{"null accountEnabled", `{` + base + `,"accountEnabled":null,"userType":"Member","department":null}`, false},
		{"null assignedPlans", `{"id":"` + adeleID + `","userPrincipalName":"a@b","assignedLicenses":[],"assignedPlans":null,"accountEnabled":true,"userType":"Member","department":null}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c, err := graph.NewClient(&tokenCred{token: "test-token"}, &graph.Options{Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.User(context.Background(), adeleID)
			if tt.ok && err != nil {
				t.Errorf("err %v, want success", err)
			}
			if !tt.ok && classify(err) != (behaviour{temporary: true}) {
				t.Errorf("err %v, want temporary", err)
			}
		})
	}
}

// An item of a listing that lacks a selected property ends the listing with a temporary
// error, never a silently disabled or unlicensed user.
func TestListingItemLackingSelectedPropertyIsAnError(t *testing.T) {
	t.Parallel()
	listings := map[string]func(*graph.Client) func(func(graph.User, error) bool){
		"scope members": func(c *graph.Client) func(func(graph.User, error) bool) {
			return c.ScopeMembers(context.Background(), []string{scope})
		},
		"teams users": func(c *graph.Client) func(func(graph.User, error) bool) {
			return c.TeamsUsers(context.Background(), []string{teams1})
		},
	}
	for name, list := range listings {
		for _, prop := range []string{"accountEnabled", "assignedPlans", "userType"} {
			t.Run(name+"/"+prop, func(t *testing.T) {
				t.Parallel()
				c, srv := newClient(t, testDirectory(t), graph.Options{})
				srv.StripProperty(prop)
				var users int
				var last error
				for _, err := range list(c) {
					if err != nil {
						last = err
						break
					}
					users++
				}
				if users != 0 || classify(last) != (behaviour{temporary: true}) {
					t.Errorf("%d users then err %v, want a temporary error before any user", users, last)
				}
			})
		}
	}
	t.Run("group members need only the id", func(t *testing.T) {
		t.Parallel()
		c, srv := newClient(t, testDirectory(t), graph.Options{})
		srv.StripProperty("accountEnabled")
		n := 0
		for _, err := range c.GroupMembers(context.Background(), scope) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n == 0 {
			t.Error("no members")
		}
	})
}

// A page or a checkMemberGroups answer without its value array is not an empty answer.
func TestAnswerWithoutValueIsTemporary(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users"}`)
	}))
	defer srv.Close()
	c, err := graph.NewClient(&tokenCred{token: "test-token"}, &graph.Options{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	groups, err := c.MemberOf(context.Background(), adeleID, []string{scope})
	if classify(err) != (behaviour{temporary: true}) {
		t.Errorf("MemberOf: %v, %v; want a temporary error", groups, err)
	}
	for _, err := range c.GroupMembers(context.Background(), scope) {
		if classify(err) != (behaviour{temporary: true}) {
			t.Errorf("GroupMembers: %v; want a temporary error", err)
		}
		break
	}
	_ = graphtest.OpGetUser
}
