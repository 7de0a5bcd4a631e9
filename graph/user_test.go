package graph_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/graph/graphtest"
)

func TestUserFound(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, testDirectory(t), graph.Options{})
	adele := graph.User{ID: adeleID, UPN: "adele.vance@contoso.example", AccountEnabled: true, UserType: "Member",
		Department: "Retail", SKUs: []string{e5}, Plans: []graph.Plan{{ServicePlanID: teams1, CapabilityStatus: "Enabled", Service: "TeamspaceAPI"}}}
	guest := adele
	guest.ID, guest.UPN, guest.UserType, guest.Department = guestID, "allan_fabrikam.example#EXT#@contoso.example", "Guest", ""
	ra := graph.User{ID: raID, UPN: "cq-support@contoso.example", UserType: "Member", Department: "Microsoft Communication Application Instance",
		SKUs: []string{raSku}, Plans: []graph.Plan{{ServicePlanID: raPlan, CapabilityStatus: "Enabled", Service: "MicrosoftCommunicationsOnline"}}}
	tests := []struct {
		name, key string
		want      graph.User
	}{
		{"by object id", adeleID, adele},
		{"by upper-case object id", "E2A214E8-BBE9-4675-9D52-490575FFC53D", adele},
		{"by UPN", "adele.vance@contoso.example", adele},
		{"by guest UPN with #EXT#", "allan_fabrikam.example#EXT#@contoso.example", guest},
		{"disabled resource account keeps its properties", raID, ra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.User(context.Background(), tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("User(%q)\n got %+v\nwant %+v", tt.key, got, tt.want)
			}
		})
	}
}

// behaviour is how the worker classifies an error: by the methods of its contract
// (worker/errors.go), found with errors.As. It is restated here so these tests do not
// depend on the worker package building.
type behaviour struct{ notFound, systemic, temporary bool }

func classify(err error) behaviour {
	var nf interface{ NotFound() bool }
	var sy interface{ Systemic() bool }
	var te interface{ Temporary() bool }
	return behaviour{
		notFound:  errors.As(err, &nf) && nf.NotFound(),
		systemic:  errors.As(err, &sy) && sy.Systemic(),
		temporary: errors.As(err, &te) && te.Temporary(),
	}
}

func retryAfterOf(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

func TestUserErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		key    string
		faults []int // statuses served before the request reaches the directory
		want   behaviour
		status int
		calls  int64
	}{
		{"unknown id is not found", "3e9a1f7c-0b2d-4c8e-9f6a-1d5b7c3e2a90", nil, behaviour{notFound: true}, 404, 1},
		{"soft-deleted user is not found", goneID, nil, behaviour{notFound: true}, 404, 1},
		{"unknown UPN is not found", "nobody@contoso.example", nil, behaviour{notFound: true}, 404, 1},
		{"503 until retries run out is temporary, never not found", adeleID, []int{503, 503, 503, 503}, behaviour{temporary: true}, 503, 4},
		{"500 is temporary and not retried in process", adeleID, []int{500}, behaviour{temporary: true}, 500, 1},
		{"429 until retries run out is temporary", adeleID, []int{429, 429, 429, 429}, behaviour{temporary: true}, 429, 4},
		{"401 is systemic", adeleID, []int{401}, behaviour{systemic: true}, 401, 1},
		{"403 Authorization_RequestDenied is systemic", adeleID, []int{403}, behaviour{systemic: true}, 403, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, srv := newClient(t, testDirectory(t), graph.Options{})
			for _, st := range tt.faults {
				srv.FailNext(st, 0)
			}
			_, err := c.User(context.Background(), tt.key)
			if got := classify(err); got != tt.want {
				t.Errorf("behaviour = %+v, want %+v (err %v)", got, tt.want, err)
			}
			var ge *graph.Error
			if !errors.As(err, &ge) || ge.StatusCode != tt.status {
				t.Fatalf("err = %v, want *graph.Error with status %d", err, tt.status)
			}
			if ge.RequestID == "" {
				t.Error("RequestID is empty; Graph's request-id should be kept for support")
			}
			if got := c.Calls(); got != tt.calls {
				t.Errorf("Calls() = %d, want %d", got, tt.calls)
			}
		})
	}
}

func TestUserThrottledThenFound(t *testing.T) {
	t.Parallel()
	c, srv := newClient(t, testDirectory(t), graph.Options{})
	srv.FailNext(http.StatusTooManyRequests, time.Second)
	start := time.Now()
	u, err := c.User(context.Background(), "adele.vance@contoso.example")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != adeleID {
		t.Errorf("ID = %s, want %s", u.ID, adeleID)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v; Retry-After asked for 1s", waited)
	}
	if got := srv.Calls("GET /v1.0/users/{id}"); got != 2 {
		t.Errorf("server saw %d calls, want 2 (throttled + retry)", got)
	}
}

func TestRetryAfterIsReported(t *testing.T) {
	t.Parallel()
	c, srv := newClient(t, testDirectory(t), graph.Options{MaxRetries: -1})
	srv.FailNext(http.StatusTooManyRequests, 7*time.Second)
	_, err := c.User(context.Background(), adeleID)
	if got := retryAfterOf(err); got != 7*time.Second {
		t.Errorf("RetryAfter = %v, want 7s (err %v)", got, err)
	}
	if c.Calls() != 1 {
		t.Errorf("Calls() = %d with retries disabled, want 1", c.Calls())
	}
}

func TestTokenIsSent(t *testing.T) {
	t.Parallel()
	dir := testDirectory(t)
	srv := graphtest.NewServer(t, dir, func(o *graphtest.Options) { o.Token = "the-right-token" })
	tests := []struct {
		token string
		want  behaviour
	}{
		{"the-right-token", behaviour{}},
		{"a-wrong-token", behaviour{systemic: true}},
	}
	for _, tt := range tests {
		cred := &tokenCred{token: tt.token}
		c, err := graph.NewClient(cred, &graph.Options{Endpoint: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.User(context.Background(), adeleID)
		if got := classify(err); got != tt.want || (tt.want == behaviour{}) != (err == nil) {
			t.Errorf("token %q: behaviour %+v err %v, want %+v", tt.token, got, err, tt.want)
		}
		if !reflect.DeepEqual(cred.scopes, []string{graph.Scope}) {
			t.Errorf("scopes = %v, want [%s]", cred.scopes, graph.Scope)
		}
	}
}

func TestCredentialFailureIsSystemic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
	}{
		{"credential unavailable", azidentity.NewCredentialUnavailableError("no managed identity endpoint")},
		{"authentication failed", &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: 401, Request: &http.Request{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := graphtest.NewServer(t, testDirectory(t))
			c, err := graph.NewClient(&tokenCred{err: tt.err}, &graph.Options{Endpoint: srv.URL()})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.User(context.Background(), adeleID)
			_, _, berr := c.UserInGroups(context.Background(), adeleID, []string{scope})
			for name, err := range map[string]error{"User": err, "UserInGroups": berr} {
				if got, want := classify(err), (behaviour{systemic: true}); got != want {
					t.Errorf("%s: behaviour = %+v, want %+v (err %v)", name, got, want, err)
				}
				if !errors.Is(err, tt.err) {
					t.Errorf("%s: err %v does not wrap the credential's error", name, err)
				}
			}
			if srv.TotalCalls() != 0 {
				t.Errorf("server saw %d calls; nothing should be sent without a token", srv.TotalCalls())
			}
		})
	}
}

func TestNewClientEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		endpoint string
		ok       bool
	}{
		{"", true},
		{"https://graph.microsoft.us", true},
		{"http://127.0.0.1:8080", true},
		{"http://localhost:8080/", true},
		{"http://[::1]:8080", true},
		{"http://graph.example.com", false},
		{"https://graph.microsoft.com/v1.0", false},
		{"graph.microsoft.com", false},
	}
	for _, tt := range tests {
		_, err := graph.NewClient(&tokenCred{token: "x"}, &graph.Options{Endpoint: tt.endpoint})
		if (err == nil) != tt.ok {
			t.Errorf("NewClient(endpoint %q) err = %v, want ok=%v", tt.endpoint, err, tt.ok)
		}
	}
}

// A 200 whose body is not the user Graph describes (a proxy's page, a cut answer) is a
// temporary error: nothing in it says the principal is absent, so it must never read as
// not found nor as an empty user.
func TestUserGarbledAnswerIsTemporary(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "<html>gateway</html>", `{"id":"` + adeleID + `","accountEnabled":`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}))
		c, err := graph.NewClient(&tokenCred{token: "test-token"}, &graph.Options{Endpoint: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		u, err := c.User(context.Background(), adeleID)
		if got := classify(err); got != (behaviour{temporary: true}) {
			t.Errorf("body %q: behaviour = %+v, user %+v, want a temporary error (err %v)", body, got, u, err)
		}
		srv.Close()
	}
}
