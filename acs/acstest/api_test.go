package acstest

import (
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// do sends a signed request with the server's current key.
func do(t *testing.T, srv *Server, method, url, body string) answer {
	t.Helper()
	return send(t, newSigned(t, srv.AccessKey(), method, url, body, time.Now()))
}

func TestAssignmentsAPI(t *testing.T) {
	srv := NewServer(t)
	url := assignmentURL(srv, alice, "2025-06-30")
	userBody := `{"principalType":"user","clientIds":["` + appA + `"]}`

	steps := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantBody   string // exact JSON answer, "" for none or an error
	}{
		{"GET absent", "GET", "", 404, ""},
		{"PUT creates", "PUT", userBody, 201, `{"objectId":"` + alice + `","tenantId":"` + tenant + `","principalType":"user","clientIds":["` + appA + `"]}`},
		{"PUT replaces", "PUT", `{"principalType":"TeamsResourceAccount"}`, 200, `{"objectId":"` + alice + `","tenantId":"` + tenant + `","principalType":"TeamsResourceAccount"}`},
		{"GET present", "GET", "", 200, `{"objectId":"` + alice + `","tenantId":"` + tenant + `","principalType":"TeamsResourceAccount"}`},
		{"DELETE present", "DELETE", "", 204, ""},
		{"DELETE absent", "DELETE", "", 404, ""},
		{"PATCH unsupported", "PATCH", "{}", 405, ""},
	}
	for _, s := range steps {
		a := do(t, srv, s.method, url, s.body)
		if a.status != s.wantStatus {
			t.Fatalf("%s: status = %d (%s), want %d", s.name, a.status, a.body, s.wantStatus)
		}
		if a.header.Get("MS-CV") == "" {
			t.Errorf("%s: no ms-cv header", s.name)
		}
		switch {
		case s.wantBody != "":
			if got := strings.TrimSpace(string(a.body)); got != s.wantBody {
				t.Errorf("%s: body = %s, want %s", s.name, got, s.wantBody)
			}
		case a.status == 204:
			if len(a.body) != 0 {
				t.Errorf("%s: body = %q, want empty", s.name, a.body)
			}
		default:
			errorOf(t, a)
		}
	}
	want := map[string]int{"GET": 2, "PUT": 2, "DELETE": 2, "PATCH": 1}
	if got := srv.Counts(); len(got) != len(want) || got["GET"] != 2 || got["PUT"] != 2 || got["DELETE"] != 2 || got["PATCH"] != 1 {
		t.Errorf("Counts() = %v, want %v", got, want)
	}
	reqs := srv.Requests()
	if len(reqs) != len(steps) || reqs[1].Method != "PUT" || reqs[1].Status != 201 || reqs[1].Date == "" ||
		reqs[1].Path != "/access/teamsExtension/tenants/"+tenant+"/assignments/"+alice {
		t.Errorf("Requests() = %+v", reqs)
	}
}

func TestPutValidation(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", `principalType=user`, "not a JSON assignment"},
		{"no principalType", `{"clientIds":["` + appA + `"]}`, "principalType is required"},
		{"unknown principalType", `{"principalType":"group"}`, "principalType must be"},
		{"user without clientIds", `{"principalType":"user"}`, "clientIds is required"},
		{"user with empty clientIds", `{"principalType":"user","clientIds":[]}`, "clientIds is required"},
		{"user with a bad client id", `{"principalType":"user","clientIds":["app"]}`, "clientIds must be GUIDs"},
		{"resource account with clientIds", `{"principalType":"resourceAccount","clientIds":["` + appA + `"]}`, "not allowed for a resource account"},
	}
	srv := NewServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, srv, "PUT", assignmentURL(srv, alice, "2025-06-30"), tt.body)
			if a.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", a.status)
			}
			if _, msg := errorOf(t, a); !strings.Contains(msg, tt.want) {
				t.Errorf("message = %q, want it to say %q", msg, tt.want)
			}
		})
	}
	if n := len(srv.Assignments()); n != 0 {
		t.Errorf("%d invalid assignments were stored", n)
	}
}

func TestRequestChecks(t *testing.T) {
	srv := NewServer(t)
	base := srv.URL() + "/access/teamsExtension/tenants/"
	tests := []struct {
		name, url string
		status    int
		code      string
	}{
		{"preview version", assignmentURL(srv, alice, "2025-03-02-preview"), 404, "NotFound"},
		{"GA version", assignmentURL(srv, alice, "2025-06-30"), 404, "NotFound"},
		{"no version", assignmentURL(srv, alice, ""), 400, "UnsupportedApiVersion"},
		{"unknown version", assignmentURL(srv, alice, "2024-01-01"), 400, "UnsupportedApiVersion"},
		{"object not a GUID", assignmentURL(srv, "alice", "2025-06-30"), 400, "InvalidArgument"},
		{"tenant not a GUID", base + "contoso/assignments/" + alice + "?api-version=2025-06-30", 400, "InvalidArgument"},
		{"no tenant segment", srv.URL() + "/access/teamsExtension/assignments/" + alice + "?api-version=2025-06-30", 404, "NotFound"},
		{"unknown path", srv.URL() + "/identities?api-version=2025-06-30", 404, "NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, srv, "GET", tt.url, "")
			if code, _ := errorOf(t, a); a.status != tt.status || code != tt.code {
				t.Errorf("answer = %d %s, want %d %s", a.status, code, tt.status, tt.code)
			}
		})
	}
}

func TestSubscriptionNotAllowed(t *testing.T) {
	srv := NewServer(t, WithSubscriptionNotAllowed())
	a := do(t, srv, "GET", assignmentURL(srv, alice, "2025-06-30"), "")
	if code, _ := errorOf(t, a); a.status != http.StatusForbidden || code != "SubscriptionNotAllowed" {
		t.Fatalf("answer = %d %s, want 403 SubscriptionNotAllowed", a.status, code)
	}
	r, _ := http.NewRequest("GET", assignmentURL(srv, alice, "2025-06-30"), nil)
	if a := send(t, r); a.status != http.StatusUnauthorized {
		t.Errorf("unsigned request: status = %d, want 401 (authentication comes first)", a.status)
	}
	srv.SetSubscriptionNotAllowed(false)
	if a := do(t, srv, "GET", assignmentURL(srv, alice, "2025-06-30"), ""); a.status != http.StatusNotFound {
		t.Errorf("after enabling: status = %d, want 404", a.status)
	}
}

func TestSeedAndDump(t *testing.T) {
	srv := NewServer(t)
	const second = "0b9f1b0e-3c2d-4a5e-8f6a-000000000000"
	srv.Seed(
		Assignment{TenantID: tenant, ObjectID: alice, PrincipalType: "User", ClientIDs: []string{appA}},
		Assignment{TenantID: tenant, ObjectID: second, PrincipalType: "resourceAccount"},
	)
	// Ids are matched without regard to case.
	a := do(t, srv, "GET", assignmentURL(srv, strings.ToUpper(alice), "2025-06-30"), "")
	if a.status != 200 || !strings.Contains(string(a.body), `"principalType":"User"`) {
		t.Errorf("GET seeded = %d %s", a.status, a.body)
	}
	resp, err := http.Get(srv.URL() + "/_emulator/assignments") // no auth
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []Assignment
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("dump = %d, %v", resp.StatusCode, err)
	}
	if !slices.EqualFunc(got, srv.Assignments(), func(a, b Assignment) bool {
		return a.ObjectID == b.ObjectID && a.PrincipalType == b.PrincipalType && slices.Equal(a.ClientIDs, b.ClientIDs)
	}) || len(got) != 2 || got[0].ObjectID != second {
		t.Errorf("dump = %+v, want both seeded assignments in id order", got)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests logged, want 1 (the dump is not logged)", n)
	}
}

func TestStartAndClose(t *testing.T) {
	srv := New(Options{AccessKey: "c2VjcmV0"})
	if srv.URL() != "" {
		t.Errorf("URL() before Start = %q, want empty", srv.URL())
	}
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want a loopback address", srv.URL())
	}
	if got, want := srv.ConnectionString(), "endpoint="+srv.URL()+"/;accesskey=c2VjcmV0"; got != want {
		t.Errorf("ConnectionString() = %q, want %q", got, want)
	}
	if a := do(t, srv, "GET", assignmentURL(srv, alice, "2025-06-30"), ""); a.status != 404 {
		t.Errorf("status = %d, want 404", a.status)
	}
	srv.StallNext()
	done := make(chan struct{})
	go func() { // a stalled request must not keep Close waiting
		defer close(done)
		if resp, err := http.Get(assignmentURL(srv, alice, "2025-06-30")); err == nil {
			resp.Body.Close()
		}
	}()
	for len(srv.faultsQueued()) > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	srv.Close()
	srv.Close() // idempotent
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled request outlived Close")
	}
	if _, err := http.Get(srv.URL() + "/_emulator/assignments"); err == nil {
		t.Error("server still answers after Close")
	}
}

// A client connection that never sent a request (a transport's spare dial) must not keep
// Close waiting: http.Server.Shutdown waits 5 s for such a connection before it counts as
// idle, which every test stopping an emulator paid.
func TestCloseDoesNotWaitForAConnectionWithoutARequest(t *testing.T) {
	srv := New(Options{})
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(50 * time.Millisecond) // let the server accept it
	start := time.Now()
	srv.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with an idle new connection open, want well under a second", took)
	}
}

func TestNewPanicsOnBadKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New() with a non-base64 key did not panic")
		}
	}()
	New(Options{AccessKey: "not base64!"})
}

// The request log keeps the most recent requests only, so a long-running emulator does not
// grow without bound; Counts still counts every request.
func TestRequestLogIsBounded(t *testing.T) {
	srv := NewServer(t, func(o *Options) { o.MaxLog = 5 })
	for i := range 23 {
		id := alice[:len(alice)-2] + string(rune('a'+i/10)) + string(rune('0'+i%10))
		do(t, srv, "GET", assignmentURL(srv, id, "2025-06-30"), "")
	}
	reqs := srv.Requests()
	if len(reqs) != 5 {
		t.Fatalf("Requests() kept %d, want the last 5", len(reqs))
	}
	for i, r := range reqs {
		if want := "c" + string(rune('0'+i-2)); i >= 2 && !strings.HasSuffix(r.Path, want) {
			t.Errorf("Requests()[%d] = %s, want the path ending %s", i, r.Path, want)
		}
	}
	if !strings.HasSuffix(reqs[0].Path, "b8") || !strings.HasSuffix(reqs[4].Path, "c2") {
		t.Errorf("Requests() = %s … %s, want b8 … c2 in arrival order", reqs[0].Path, reqs[4].Path)
	}
	if got := srv.Counts()["GET"]; got != 23 {
		t.Errorf("Counts()[GET] = %d, want 23", got)
	}
	unbounded := NewServer(t, func(o *Options) { o.MaxLog = -1 })
	for range 12 {
		do(t, unbounded, "GET", assignmentURL(unbounded, alice, "2025-06-30"), "")
	}
	if n := len(unbounded.Requests()); n != 12 {
		t.Errorf("with no limit Requests() kept %d, want 12", n)
	}
}
