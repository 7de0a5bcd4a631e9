package worker_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	wt "github.com/tpe-provisioner/tpe-provisioner/internal/workertest"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Identities used across the fixtures in testdata/, beside workertest's tenant,
// clientState and subscription.
const (
	fxForgedState = "guessed-client-state"
	fxUserA       = "3f5d1c2e-9b8a-4e7f-8d6c-1a2b3c4d5e6f"
	fxUserB       = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	fxUserC       = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	fxGroup       = "5b8d2e4f-6a1c-4d3e-9f7b-2c4a6e8d0f12"
)

// fxOverrides also accepts grant and revoke commands from the queue.
var fxOverrides = worker.Trust{TenantID: wt.TenantID, ClientState: wt.ClientState, QueueOverrides: true}

// decodedView is Decoded with rejections reduced to their reasons, for comparison.
type decodedView struct {
	Principals []worker.Target
	Groups     []string
	Lifecycle  []worker.LifecycleEvent
	Probe      bool
	Rejected   []string
}

func viewOf(d worker.Decoded) decodedView {
	v := decodedView{Principals: d.Principals, Groups: d.Groups, Lifecycle: d.Lifecycle, Probe: d.Probe}
	for _, r := range d.Rejected {
		v.Rejected = append(v.Rejected, r.Reason)
	}
	return v
}

func notified(oid, source string) worker.Target {
	return worker.Target{Principal: oid, Command: worker.CommandReconcile, Source: source}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string
		props   map[string]any
		trust   worker.Trust
		want    decodedView
		wantErr string // PermanentError reason for a whole-message failure
	}{
		{name: "graph collection of user updates yields each user once, lower-cased",
			fixture: "graph_users_updated.json", trust: wt.Trust,
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated"), notified(fxUserB, "users/updated")}}},
		{name: "graph collection of a user deletion",
			fixture: "graph_users_deleted.json", trust: wt.Trust,
			want: decodedView{Principals: []worker.Target{notified(fxUserB, "users/deleted")}}},
		{name: "event grid user updated for a soft delete is a deletion",
			fixture: "eg_user_softdeleted.json", trust: wt.Trust,
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/deleted")}}},
		{name: "event grid user deleted takes the id from the subject",
			fixture: "eg_user_deleted.json", trust: wt.Trust,
			want: decodedView{Principals: []worker.Target{notified(fxUserC, "users/deleted")}}},
		{name: "event grid group update with members delta reconciles added and removed members",
			fixture: "eg_group_updated_delta.json", trust: wt.Trust,
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "groups/members@delta"), notified(fxUserB, "groups/members@delta")}}},
		{name: "event grid array of a group delta and a user update",
			fixture: "eg_group_updated_delta_array.json", trust: wt.Trust,
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "groups/members@delta"),
				notified(fxUserB, "groups/members@delta"), notified(fxUserC, "users/updated")}}},
		{name: "event grid group update without delta asks for the group's members",
			fixture: "eg_group_updated_nodelta.json", trust: wt.Trust,
			want: decodedView{Groups: []string{fxGroup}}},
		{name: "event grid group deleted asks for the group's members",
			fixture: "eg_group_deleted.json", trust: wt.Trust,
			want: decodedView{Groups: []string{fxGroup}}},
		{name: "lifecycle collection normalises known events and passes unknown ones",
			fixture: "graph_lifecycle.json", trust: wt.Trust,
			want: decodedView{Lifecycle: []worker.LifecycleEvent{{wt.SubscriptionID, "reauthorizationRequired"},
				{wt.SubscriptionID, "subscriptionRemoved"}, {wt.SubscriptionID, "missed"}, {wt.SubscriptionID, "somethingNew"}}}},
		{name: "event grid reauthorization required",
			fixture: "eg_lifecycle_reauth.json", trust: wt.Trust,
			want: decodedView{Lifecycle: []worker.LifecycleEvent{{wt.SubscriptionID, "reauthorizationRequired"}}}},
		{name: "reconcile command by object id",
			fixture: "command_reconcile.json", trust: wt.Trust,
			want: decodedView{Principals: []worker.Target{{Principal: fxUserA, Command: worker.CommandReconcile, Source: "command"}}}},
		{name: "grant command by UPN with the resourceAccount alias",
			fixture: "command_grant_upn.json", trust: fxOverrides,
			want: decodedView{Principals: []worker.Target{{Principal: "ivr-main@contoso.onmicrosoft.com",
				Type: worker.PrincipalResourceAccount, Command: worker.CommandGrant, Source: "command"}}}},
		{name: "revoke command in any letter case",
			fixture: "command_revoke.json", trust: fxOverrides,
			want: decodedView{Principals: []worker.Target{{Principal: fxUserB, Type: worker.PrincipalUser, Command: worker.CommandRevoke, Source: "command"}}}},
		{name: "command naming a path instead of a principal is rejected",
			fixture: "command_bad_principal.json", trust: fxOverrides,
			want: decodedView{Rejected: []string{worker.ReasonBadPrincipal}}},
		{name: "grant command from the queue is untrusted without queue overrides",
			fixture: "command_grant_upn.json", trust: wt.Trust,
			want: decodedView{Rejected: []string{worker.ReasonUntrusted}}},
		{name: "revoke command from the queue is untrusted without queue overrides",
			fixture: "command_revoke.json", trust: wt.Trust,
			want: decodedView{Rejected: []string{worker.ReasonUntrusted}}},
		{name: "unknown command is rejected",
			fixture: "command_bad_command.json", trust: wt.Trust,
			want: decodedView{Rejected: []string{worker.ReasonMalformed}}},
		{name: "event hubs reachability probe",
			fixture: "eventhubs_probe.json", trust: wt.Trust,
			want: decodedView{Probe: true}},
		{name: "event grid validation event",
			fixture: "eg_validation.json", trust: wt.Trust,
			want: decodedView{Probe: true}},
		{name: "event grid validation property wins over the body",
			fixture: "graph_users_updated.json", trust: wt.Trust,
			props: map[string]any{"aeg-event-type": "subscriptionvalidation"},
			want:  decodedView{Probe: true}},
		{name: "event grid notification property does not make a probe",
			fixture: "graph_users_deleted.json", trust: wt.Trust,
			props: map[string]any{"aeg-event-type": "Notification", "aeg-delivery-count": 0},
			want:  decodedView{Principals: []worker.Target{notified(fxUserB, "users/deleted")}}},
		{name: "forged clientState is untrusted",
			fixture: "forged_clientstate.json", trust: wt.Trust,
			want: decodedView{Rejected: []string{worker.ReasonUntrusted}}},
		{name: "clientState is not checked when none is configured",
			fixture: "forged_clientstate.json", trust: worker.Trust{TenantID: wt.TenantID},
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}},
		{name: "another tenant in the cloud event source is untrusted",
			fixture: "wrong_tenant.json", trust: wt.Trust,
			want: decodedView{Rejected: []string{worker.ReasonUntrusted}}},
		{name: "tenant is not checked when none is configured",
			fixture: "wrong_tenant.json", trust: worker.Trust{ClientState: wt.ClientState},
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}},
		{name: "one bad item never poisons the rest of a collection",
			fixture: "mixed_collection.json", trust: wt.Trust,
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}, Groups: []string{fxGroup},
				Rejected: []string{worker.ReasonMalformed, worker.ReasonNotAUser, worker.ReasonBadPrincipal, worker.ReasonUntrusted, worker.ReasonMalformed}}},
		{name: "unknown event types and non-events in an array are rejected alone",
			fixture: "eg_mixed_array.json", trust: wt.Trust,
			want: decodedView{Principals: []worker.Target{notified(fxUserB, "users/updated")},
				Rejected: []string{worker.ReasonUnknownShape, worker.ReasonUnknownShape}}},
		{name: "object of no known shape", fixture: "unknown_shape.json", trust: wt.Trust, wantErr: worker.ReasonUnknownShape},
		{name: "truncated JSON", fixture: "malformed.json", trust: wt.Trust, wantErr: worker.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := worker.Decode(readFixture(t, tt.fixture), tt.props, tt.trust)
			checkDecode(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestDecodeInline(t *testing.T) {
	t.Parallel()
	user := func(resource, rd string) string {
		return `{"value":[{"subscriptionId":"s","changeType":"updated","resource":"` + resource +
			`","resourceData":` + rd + `,"tenantId":"` + wt.TenantID + `"}]}`
	}
	upper := strings.ToUpper(fxUserA)
	tests := []struct {
		name    string
		body    string
		want    decodedView
		wantErr string
	}{
		{name: "resource Users/<id> without resourceData id",
			body: user("Users/"+upper, `{}`), want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}},
		{name: "resource /users/<id>",
			body: user("/users/"+fxUserA, `null`), want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}},
		{name: "resource users('<id>')",
			body: user("users('"+fxUserA+"')", `{}`), want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}},
		{name: "resource v1.0/users/<id>",
			body: user("v1.0/Users/"+fxUserA, `{}`), want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}},
		{name: "resourceData id wins over the resource path",
			body: user("Users/"+fxUserB, `{"id":"`+fxUserA+`"}`), want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}},
		{name: "kind from @odata.type when there is no resource path",
			body: user("", `{"@odata.type":"#microsoft.graph.user","id":"`+fxUserA+`"}`),
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}},
		{name: "no resource at all is not a user",
			body: user("", `{"id":"`+fxUserA+`"}`), want: decodedView{Rejected: []string{worker.ReasonNotAUser}}},
		{name: "resource id that is not a GUID",
			body: user("Users/"+fxUserA+"x", `{}`), want: decodedView{Rejected: []string{worker.ReasonBadPrincipal}}},
		{name: "a device is not a user",
			body: user("devices/"+fxUserA, `{}`), want: decodedView{Rejected: []string{worker.ReasonNotAUser}}},
		{name: "changeType is case-insensitive",
			body: `{"value":[{"tenantId":"` + wt.TenantID + `","changeType":"DELETED","resource":"Users/` + fxUserA + `"}]}`,
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/deleted")}}},
		{name: "created users are reconciled",
			body: `{"value":[{"tenantId":"` + wt.TenantID + `","changeType":"created","resource":"Users/` + fxUserA + `"}]}`,
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/created")}}},
		{name: "empty members delta means no member changed",
			body: `{"value":[{"tenantId":"` + wt.TenantID + `","changeType":"updated","resource":"Groups/` + fxGroup + `","resourceData":{"members@delta":[]}}]}`,
			want: decodedView{}},
		{name: "a bad member id is rejected, the others kept",
			body: `{"value":[{"tenantId":"` + wt.TenantID + `","changeType":"updated","resource":"Groups/` + fxGroup + `","resourceData":{"members@delta":[{"id":"x"},{"id":"` + fxUserB + `","@removed":"deleted"}]}}]}`,
			want: decodedView{Principals: []worker.Target{notified(fxUserB, "groups/members@delta")}, Rejected: []string{worker.ReasonBadPrincipal}}},
		{name: "members delta of the wrong type is malformed",
			body: `{"value":[{"tenantId":"` + wt.TenantID + `","changeType":"updated","resource":"Groups/` + fxGroup + `","resourceData":{"members@delta":{"id":"x"}}}]}`,
			want: decodedView{Rejected: []string{worker.ReasonMalformed}}},
		{name: "event grid schema eventType is accepted",
			body: `{"source":"/tenants/` + wt.TenantID + `/applications/a1","eventType":"Microsoft.Graph.UserUpdated","subject":"Users/` + fxUserA + `","data":{"changeType":"updated"}}`,
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}},
		{name: "cloud event type is case-insensitive",
			body: `{"source":"/tenants/` + wt.TenantID + `/applications/a1","specversion":"1.0","type":"MICROSOFT.GRAPH.USERDELETED","subject":"Users/` + fxUserA + `"}`,
			want: decodedView{Principals: []worker.Target{notified(fxUserA, "users/deleted")}}},
		{name: "subscription removed event type",
			body: `{"source":"/tenants/` + wt.TenantID + `/applications/a1","specversion":"1.0","type":"Microsoft.Graph.SubscriptionRemoved","data":{"subscriptionId":"s1"}}`,
			want: decodedView{Lifecycle: []worker.LifecycleEvent{{"s1", "subscriptionRemoved"}}}},
		{name: "a notification naming no tenant is untrusted",
			body: `{"value":[{"changeType":"deleted","resource":"Users/` + fxUserA + `"}]}`,
			want: decodedView{Rejected: []string{worker.ReasonUntrusted}}},
		{name: "a cloud event naming no tenant is untrusted",
			body: `{"specversion":"1.0","type":"Microsoft.Graph.UserDeleted","subject":"Users/` + fxUserA + `"}`,
			want: decodedView{Rejected: []string{worker.ReasonUntrusted}}},
		{name: "a lifecycle event naming no tenant is untrusted",
			body: `{"specversion":"1.0","type":"Microsoft.Graph.SubscriptionRemoved","data":{"subscriptionId":"s1"}}`,
			want: decodedView{Rejected: []string{worker.ReasonUntrusted}}},
		{name: "lifecycle event in data of an unlisted type",
			body: `{"source":"/tenants/` + wt.TenantID + `/applications/a1","specversion":"1.0","type":"Contoso.Relay","data":{"subscriptionId":"s1","lifecycleEvent":"MISSED"}}`,
			want: decodedView{Lifecycle: []worker.LifecycleEvent{{"s1", "missed"}}}},
		{name: "organizationId of another tenant is untrusted",
			body: user("Users/"+fxUserA, `{"organizationId":"00000000-0000-0000-0000-000000000000"}`),
			want: decodedView{Rejected: []string{worker.ReasonUntrusted}}},
		{name: "UPN command with a guest UPN",
			body: `{"command":"reconcile","principal":"alice_fabrikam.com#EXT#@contoso.onmicrosoft.com"}`,
			want: decodedView{Principals: []worker.Target{{Principal: "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com", Command: worker.CommandReconcile, Source: "command"}}}},
		{name: "command with an unknown principal type",
			body: `{"command":"reconcile","principal":"` + fxUserA + `","principalType":"device"}`,
			want: decodedView{Rejected: []string{worker.ReasonMalformed}}},
		{name: "command with a UPN without a domain",
			body: `{"command":"reconcile","principal":"alice@localhost"}`,
			want: decodedView{Rejected: []string{worker.ReasonBadPrincipal}}},
		{name: "empty array decodes to nothing", body: `[]`, want: decodedView{}},
		{name: "value that is not an array", body: `{"value":5}`, wantErr: worker.ReasonMalformed},
		{name: "value null", body: `{"value":null}`, wantErr: worker.ReasonMalformed},
		{name: "a JSON string", body: `"hello"`, wantErr: worker.ReasonUnknownShape},
		{name: "an empty body", body: ``, wantErr: worker.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := worker.Decode([]byte(tt.body), nil, worker.Trust{TenantID: wt.TenantID})
			checkDecode(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestDecodeRejectsTooLargeBeforeParsing(t *testing.T) {
	t.Parallel()
	body := append([]byte(`{"value":[]`), bytes.Repeat([]byte(" "), worker.MaxBodyBytes)...)
	body = append(body, '}')
	_, err := worker.Decode(body, map[string]any{"aeg-event-type": "SubscriptionValidation"}, wt.Trust)
	checkDecode(t, worker.Decoded{}, err, decodedView{}, worker.ReasonTooLarge)

	atLimit := append([]byte(`{"value":[]`), bytes.Repeat([]byte(" "), worker.MaxBodyBytes-len(`{"value":[]}`))...)
	atLimit = append(atLimit, '}')
	if _, err := worker.Decode(atLimit, nil, wt.Trust); err != nil {
		t.Errorf("Decode(body of exactly MaxBodyBytes) = %v, want no error", err)
	}
}

func TestDecodeNeverEchoesClientState(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		got, err := worker.Decode(readFixture(t, e.Name()), nil, wt.Trust)
		texts := []string{}
		if err != nil {
			texts = append(texts, err.Error())
		}
		for _, r := range got.Rejected {
			texts = append(texts, r.Error())
		}
		for _, s := range texts {
			if strings.Contains(s, wt.ClientState) || strings.Contains(s, fxForgedState) {
				t.Errorf("%s: rejection %q holds a clientState", e.Name(), s)
			}
		}
	}
}

func checkDecode(t *testing.T, got worker.Decoded, err error, want decodedView, wantErr string) {
	t.Helper()
	if wantErr != "" {
		var perm *worker.PermanentError
		if !errors.As(err, &perm) || perm.Reason != wantErr {
			t.Fatalf("Decode error = %v, want a *PermanentError with reason %q", err, wantErr)
		}
		if perm.Description == "" {
			t.Errorf("Decode error %v has no description", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Decode error = %v, want none", err)
	}
	if g := viewOf(got); !reflect.DeepEqual(g, want) {
		t.Errorf("Decode =\n %+v\nwant\n %+v", g, want)
	}
	for _, r := range got.Rejected {
		if r.Description == "" {
			t.Errorf("rejection %q has no description", r.Reason)
		}
	}
}

func TestPrincipalForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		guid, upn bool
	}{
		{fxUserA, true, false},
		{strings.ToUpper(fxUserA), true, false},
		{"{" + fxUserA + "}", false, false},
		{strings.ReplaceAll(fxUserA, "-", ""), false, false},
		{fxUserA[:35] + "g", false, false},
		{"alice@contoso.com", false, true},
		{"o'brien@contoso.co.uk", false, true},
		{"alice_fabrikam.com#EXT#@contoso.onmicrosoft.com", false, true},
		{"alice@contoso", false, false},
		{"@contoso.com", false, false},
		{"alice@@contoso.com", false, false},
		{"alice@contoso..com", false, false},
		{"alice smith@contoso.com", false, false},
		{"alice@contoso.com/../admin", false, false},
		{"alice@contoso.com?$select=id", false, false},
		{strings.Repeat("a", 300) + "@contoso.com", false, false},
		{"", false, false},
		// Nothing invisible or reordering reaches an audit record as a principal.
		{"élodie@contoso.com", false, true},
		{"ad\u202emin@contoso.com", false, false},       // right-to-left override
		{"admin@contoso.com\u202a", false, false},       // left-to-right embedding
		{"\u2066admin\u2069@contoso.com", false, false}, // isolates
		{"admin\u200b@contoso.com", false, false},       // zero-width space (Cf)
		{"admin\u00ad@contoso.com", false, false},       // soft hyphen (Cf)
		{"\ufeffadmin@contoso.com", false, false},       // BOM (Cf)
		{"admin\u0085@contoso.com", false, false},       // next line (C1 control)
		{"admin\u009b@contoso.com", false, false},       // CSI (C1 control)
		{"admin\u00a0@contoso.com", false, false},       // no-break space
		{"admin\u2028@contoso.com", false, false},       // line separator
		{"admin\ue000@contoso.com", false, false},       // private use
		{"admin\xff@contoso.com", false, false},         // invalid UTF-8
		{"admin\x1b[31m@contoso.com", false, false},     // ANSI escape
	}
	for _, tt := range tests {
		if got := worker.IsObjectID(tt.in); got != tt.guid {
			t.Errorf("worker.IsObjectID(%q) = %v, want %v", tt.in, got, tt.guid)
		}
		if got := worker.LooksLikeUPN(tt.in); got != tt.upn {
			t.Errorf("worker.LooksLikeUPN(%q) = %v, want %v", tt.in, got, tt.upn)
		}
	}
}

func TestDecodeKeysDifferingOnlyInCaseAreDeterministic(t *testing.T) {
	t.Parallel()
	body := []byte(`{"VALUE":5,"Value":{"x":1},"value":[{"changeType":"updated","resource":"Users/` + fxUserA + `"}]}`)
	for range 20 {
		got, err := worker.Decode(body, nil, worker.Trust{})
		checkDecode(t, got, err, decodedView{Principals: []worker.Target{notified(fxUserA, "users/updated")}}, "")
	}
	body = []byte(`{"VALUE":5,"Value":[]}`)
	for range 20 {
		_, err := worker.Decode(body, nil, worker.Trust{})
		checkDecode(t, worker.Decoded{}, err, decodedView{}, worker.ReasonMalformed) // "VALUE" < "Value"
	}
}
