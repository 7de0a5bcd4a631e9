package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

const (
	routeBatch    = "POST /v1.0/$batch"
	routeUser     = "GET /v1.0/users/{id}"
	routeMemberOf = "GET /v1.0/users/{id}/transitiveMemberOf"
)

func TestUserInGroupsReadsBothInOneRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		user   string
		groups []string
		want   []string
	}{
		{"a direct member", adeleID, []string{scope}, []string{scope}},
		{"a nested member matches both groups", agentID, []string{"5D0C2A4E-9B1F-4C6A-8E3D-2F7A1B9C0E11", nested}, []string{scope, nested}},
		{"a user outside every group", outsideID, []string{scope, nested}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, srv := newClient(t, testDirectory(t), graph.Options{})
			u, in, err := c.UserInGroups(context.Background(), tt.user, tt.groups)
			if err != nil {
				t.Fatalf("UserInGroups: %v", err)
			}
			slices.Sort(in)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if u.ID != tt.user || !slices.Equal(in, want) {
				t.Errorf("got user %s in %v, want %s in %v", u.ID, in, tt.user, want)
			}
			if c.Calls() != 1 || srv.Calls(routeBatch) != 1 || srv.Calls(routeUser) != 1 || srv.Calls(routeMemberOf) != 1 {
				t.Errorf("%d HTTP requests (%d batches, %d user reads, %d membership reads), want 1 batch of both",
					c.Calls(), srv.Calls(routeBatch), srv.Calls(routeUser), srv.Calls(routeMemberOf))
			}
			for _, r := range srv.Requests() {
				if r.Route == routeMemberOf && (r.Header.Get("ConsistencyLevel") != "" || r.Query != "$select=id&$top=999") {
					t.Errorf("membership read %q with ConsistencyLevel %q, want a standard query $select=id&$top=999", r.Query, r.Header.Get("ConsistencyLevel"))
				}
			}
		})
	}
}

func TestUserInGroupsFaultsOnEachInnerRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		op        string
		status    int
		times     int
		user      string
		want      behaviour // zero: success
		batches   int
		userReads int
		memberOf  int
	}{
		{"throttled user read is re-sent alone", graphtest.OpGetUser, 429, 1, adeleID, behaviour{}, 2, 2, 1},
		{"unavailable membership read is re-sent alone", graphtest.OpTransitiveMemberOf, 503, 1, adeleID, behaviour{}, 2, 1, 2},
		{"both throttled twice", "both", 429, 2, adeleID, behaviour{}, 3, 3, 3},
		{"a missing user is not found", "", 0, 0, goneID, behaviour{notFound: true}, 1, 1, 1},
		{"membership 404 after the user read is temporary, never not found", graphtest.OpTransitiveMemberOf, 404, 1, adeleID, behaviour{temporary: true}, 1, 1, 1},
		{"membership 500 is temporary", graphtest.OpTransitiveMemberOf, 500, 1, adeleID, behaviour{temporary: true}, 1, 1, 1},
		{"membership 403 is systemic", graphtest.OpTransitiveMemberOf, 403, 1, adeleID, behaviour{systemic: true}, 1, 1, 1},
		{"user 403 is systemic", graphtest.OpGetUser, 403, 1, adeleID, behaviour{systemic: true}, 1, 1, 1},
		{"user 500 is temporary", graphtest.OpGetUser, 500, 1, adeleID, behaviour{temporary: true}, 1, 1, 1},
		{"a throttled envelope is retried whole", graphtest.OpBatch, 429, 1, adeleID, behaviour{}, 2, 1, 1},
		{"a missing user is not found without waiting for a throttled membership read", graphtest.OpTransitiveMemberOf, 429, 0, goneID, behaviour{notFound: true}, 1, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, srv := newClient(t, testDirectory(t), graph.Options{})
			switch tt.op {
			case "":
			case "both":
				srv.FailOn(graphtest.OpGetUser, tt.status, tt.times)
				srv.FailOn(graphtest.OpTransitiveMemberOf, tt.status, tt.times)
			default:
				srv.FailOn(tt.op, tt.status, tt.times)
			}
			u, in, err := c.UserInGroups(context.Background(), tt.user, []string{scope})
			if b := classify(err); b != tt.want {
				t.Errorf("behaviour %+v, want %+v (err %v)", b, tt.want, err)
			}
			if tt.want == (behaviour{}) && (err != nil || u.ID != tt.user || len(in) != 1) {
				t.Errorf("got %s in %v, err %v; want the user in scope", u.ID, in, err)
			}
			var ge *graph.Error
			if err != nil && !errors.As(err, &ge) {
				t.Errorf("err %T %v, want a *graph.Error", err, err)
			}
			if got := [3]int{srv.Calls(routeBatch), srv.Calls(routeUser), srv.Calls(routeMemberOf)}; got != [3]int{tt.batches, tt.userReads, tt.memberOf} {
				t.Errorf("batches, user reads, membership reads = %v, want %v", got, [3]int{tt.batches, tt.userReads, tt.memberOf})
			}
		})
	}
}

func TestUserInGroupsThrottledPastRetriesKeepsRetryAfter(t *testing.T) {
	t.Parallel()
	c, srv := newClient(t, testDirectory(t), graph.Options{MaxRetries: -1},
		func(o *graphtest.Options) { o.FaultRetryAfter = 1500 * time.Millisecond })
	srv.FailOn(graphtest.OpTransitiveMemberOf, 429, 0)
	_, _, err := c.UserInGroups(context.Background(), adeleID, []string{scope})
	if b := classify(err); b != (behaviour{temporary: true}) || retryAfterOf(err) != 1500*time.Millisecond {
		t.Errorf("behaviour %+v, Retry-After %v, want temporary with 1.5s (err %v)", b, retryAfterOf(err), err)
	}
}

func TestUserInGroupsStrippedPropertyIsIncomplete(t *testing.T) {
	t.Parallel()
	c, srv := newClient(t, testDirectory(t), graph.Options{})
	srv.StripProperty("accountEnabled")
	_, _, err := c.UserInGroups(context.Background(), adeleID, []string{scope})
	var ge *graph.Error
	if !errors.As(err, &ge) || !ge.Incomplete() || !ge.Temporary() || ge.NotFound() {
		t.Errorf("err %v, want a temporary incomplete *graph.Error", err)
	}
}

func TestUserInGroupsFollowsPagesUntilAMatch(t *testing.T) {
	t.Parallel()
	dir := testDirectory(t)
	// The agent is in the nested group, the scope group and ten more, each on its own page.
	for _, g := range []string{"00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b", "00000000-0000-4000-8000-00000000000c",
		"00000000-0000-4000-8000-00000000000d", "00000000-0000-4000-8000-00000000000e", "ffffffff-0000-4000-8000-00000000000a",
		"ffffffff-0000-4000-8000-00000000000b", "ffffffff-0000-4000-8000-00000000000c", "ffffffff-0000-4000-8000-00000000000d", "ffffffff-0000-4000-8000-00000000000e"} {
		must(t, dir.AddGroup(g, "other", agentID))
	}
	pages := len(dir.TransitiveGroupsOf(agentID))
	c, srv := newClient(t, dir, graph.Options{}, func(o *graphtest.Options) { o.MaxPageSize = 1 })
	_, in, err := c.UserInGroups(context.Background(), agentID, []string{nested})
	if err != nil || !slices.Equal(in, []string{nested}) {
		t.Fatalf("got %v, %v; want the nested group", in, err)
	}
	// Groups come by id: the nested group (a3e7…) is the 7th of 12.
	if got := srv.Calls(routeMemberOf); got != 7 {
		t.Errorf("%d membership pages read, want 7 (stop at the page that matches)", got)
	}
	_, in, err = c.UserInGroups(context.Background(), agentID, []string{"3e9a1f7c-0b2d-4c8e-9f6a-1d5b7c3e2a90"})
	if err != nil || len(in) != 0 {
		t.Fatalf("got %v, %v; want no group", in, err)
	}
	if got := srv.Calls(routeMemberOf); got != 7+pages {
		t.Errorf("%d membership pages read, want %d (every page when none matches)", got-7, pages)
	}
}

// tamper serves the emulator with every batch answer rewritten by f.
func tamper(t *testing.T, dir *graphtest.Directory, f func(responses []map[string]any) []map[string]any) *graph.Client {
	t.Helper()
	emu := graphtest.New(dir, graphtest.Options{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		emu.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if r.URL.Path == "/v1.0/$batch" && rec.Code == 200 {
			var m struct {
				Responses []map[string]any `json:"responses"`
			}
			if err := json.Unmarshal(body, &m); err != nil {
				t.Errorf("batch answer: %v", err)
			}
			body, _ = json.Marshal(map[string]any{"responses": f(m.Responses)})
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(bytes.Clone(body))
	}))
	t.Cleanup(ts.Close)
	c, err := graph.NewClient(&tokenCred{token: "t"}, &graph.Options{Endpoint: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUserInGroupsDistrustsAnswersItCannotRead(t *testing.T) {
	t.Parallel()
	isMembership := func(r map[string]any) bool {
		b, _ := r["body"].(map[string]any)
		ctx, _ := b["@odata.context"].(string)
		return ctx == "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"
	}
	tests := map[string]func([]map[string]any) []map[string]any{
		"no response for the membership read": func(rs []map[string]any) []map[string]any {
			return slices.DeleteFunc(rs, isMembership)
		},
		"a membership answer without value": func(rs []map[string]any) []map[string]any {
			for _, r := range rs {
				if isMembership(r) {
					delete(r["body"].(map[string]any), "value")
				}
			}
			return rs
		},
		"a membership item without id": func(rs []map[string]any) []map[string]any {
			for _, r := range rs {
				if isMembership(r) {
					r["body"].(map[string]any)["value"] = []any{map[string]any{"@odata.type": "#microsoft.graph.group"}}
				}
			}
			return rs
		},
		"an unexpected status": func(rs []map[string]any) []map[string]any {
			for _, r := range rs {
				if isMembership(r) {
					r["status"] = 202
				}
			}
			return rs
		},
		"no responses at all": func([]map[string]any) []map[string]any { return nil },
		"a response for an id never sent": func(rs []map[string]any) []map[string]any {
			for _, r := range rs {
				if isMembership(r) {
					r["id"] = "other"
				}
			}
			return rs
		},
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := tamper(t, testDirectory(t), f)
			_, in, err := c.UserInGroups(context.Background(), outsideID, []string{scope})
			if b := classify(err); b != (behaviour{temporary: true}) {
				t.Errorf("got %v, behaviour %+v (err %v); want a temporary error, never a verdict", in, b, err)
			}
		})
	}
}
