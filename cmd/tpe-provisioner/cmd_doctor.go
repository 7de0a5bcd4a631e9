package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus/admin"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/graph"
	"github.com/tpe-provisioner/tpe-provisioner/internal/adapt"
	"github.com/tpe-provisioner/tpe-provisioner/subscriptions"
	"github.com/tpe-provisioner/tpe-provisioner/worker"
	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
)

func init() {
	commands["doctor"] = command{
		summary: "check the configured ACS, Graph, Service Bus and subscriptions end to end (reads only)",
		detail: `Checks the configured setup end to end without changing anything: one line per check with
PASS, WARN, FAIL or SKIP and the fix.`,
		exits: []exitCode{{1, "a check failed (FAIL); WARN and SKIP exit 0"}},
		run:   runDoctor,
	}
}

// Check outcomes. SKIP is a check that does not apply to these settings or that cannot be
// observed from here; only FAIL makes doctor exit non-zero.
const (
	checkPass = "PASS"
	checkWarn = "WARN"
	checkFail = "FAIL"
	checkSkip = "SKIP"
)

// doctorCheckTimeout bounds each check's calls.
var doctorCheckTimeout = 20 * time.Second

// check is one line of doctor's report.
type check struct {
	Name   string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// doctor runs the checks in order and collects their lines.
type doctor struct {
	cfg    *Config
	svc    *service
	checks []check
}

func (d *doctor) add(name, status, detail, fix string) {
	d.checks = append(d.checks, check{Name: name, Status: status, Detail: detail, Fix: fix})
}

func (d *doctor) failed() int {
	n := 0
	for _, c := range d.checks {
		if c.Status == checkFail {
			n++
		}
	}
	return n
}

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	if err := c.bindFlags(fs, environ); err != nil {
		return err
	}
	out := outputFormatFlag(fs, "table")
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	d := &doctor{cfg: &c}
	d.run(ctx, stderr)
	if *out == "json" {
		if err := printJSON(stdout, struct {
			Checks []check `json:"checks"`
			Failed int     `json:"failed"`
		}{d.checks, d.failed()}); err != nil {
			return err
		}
	} else {
		printChecks(stdout, d.checks)
	}
	if n := d.failed(); n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d check(s) failed", n)}
	}
	return nil
}

func (d *doctor) run(ctx context.Context, stderr io.Writer) {
	d.settings()
	svc, err := newService(d.cfg, newLogger(io.Discard, "text", "error"), nil)
	if err != nil {
		d.add("clients", checkFail, err.Error(), "fix the settings above")
		return
	}
	d.svc = svc
	d.acs(ctx)
	d.graphToken(ctx)
	d.graph(ctx)
	d.subscriptions(ctx)
	d.serviceBus(ctx)
}

// settings validates what run needs and the consistency doctor can see offline.
func (d *doctor) settings() {
	queue := d.cfg.ServiceBusConnectionString != "" || d.cfg.ServiceBusNamespace != ""
	err := d.cfg.Validate(needs{acs: true, clientIDs: true, graph: true, source: queue})
	if err == nil {
		d.add("settings", checkPass, "every setting run needs is set and well formed", "")
	}
	for _, e := range unjoin(err) {
		env, msg, _ := strings.Cut(e.Error(), ": ")
		d.add("settings "+env, checkFail, msg, "set "+env+" (tpe-provisioner config shows every value and where it came from)")
	}
	if d.cfg.ClientState == "" {
		d.add("settings TPE_CLIENT_STATE", checkWarn, "no clientState: notifications cannot be checked, and subscribe refuses to create subscriptions",
			"set TPE_CLIENT_STATE to a random secret (openssl rand -base64 32)")
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// acs reads an assignment that cannot exist: 404 proves the endpoint, the credentials, the
// tenant path and the api-version are accepted.
func (d *doctor) acs(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, doctorCheckTimeout)
	defer cancel()
	_, err := d.svc.acs.Get(ctx, d.cfg.TenantID, probeObjectID)
	var re *acs.ResponseError
	switch {
	case acs.IsNotFound(err):
		d.add("acs", checkPass, fmt.Sprintf("a read of an absent assignment answered 404: reachable, authorised, api-version %s accepted", d.cfg.ACSAPIVersion), "")
	case err == nil:
		d.add("acs", checkWarn, "the probe object id "+probeObjectID+" holds an assignment; reachable and authorised", "")
	case errors.As(err, &re) && re.StatusCode == http.StatusUnauthorized:
		d.add("acs", checkFail, redactACS(err, d.cfg), "check the access key in ACS_CONNECTION_STRING (Azure portal → Communication Services → Keys), or the identity's role on the resource")
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		d.add("acs", checkFail, redactACS(err, d.cfg), "SubscriptionNotAllowed: the Azure subscription is not enabled for Teams Phone extensibility; otherwise grant the identity a role on the ACS resource")
	case errors.As(err, &re) && re.StatusCode == http.StatusBadRequest:
		d.add("acs", checkFail, redactACS(err, d.cfg), "check ACS_API_VERSION (2025-06-30 is GA) and TPE_TENANT_ID")
	default:
		d.add("acs", checkFail, redactACS(err, d.cfg), "check ACS_CONNECTION_STRING / ACS_ENDPOINT and that the endpoint is reachable from here")
	}
	d.add("acs principalType spelling", checkSkip,
		"not observable without reading an existing resource-account assignment; the client accepts teamsResourceAccount and resourceAccount in any case, and sends "+d.cfg.ACSResourceAccountType+" (ACS_RESOURCE_ACCOUNT_TYPE)",
		"")
}

// redactACS returns err's text without the connection string's access key.
func redactACS(err error, c *Config) string {
	msg := err.Error()
	for _, part := range strings.Split(c.ACSConnectionString, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(strings.TrimSpace(k), "accesskey") && v != "" {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	return msg
}

// graphToken asks the credential for a Graph token and compares its tenant with ours.
func (d *doctor) graphToken(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, doctorCheckTimeout)
	defer cancel()
	cred, err := credential(d.cfg.GraphEndpoint)
	if err != nil {
		d.add("graph token", checkFail, err.Error(), "configure a managed identity, workload identity or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET")
		return
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graph.Scope}})
	if err != nil {
		d.add("graph token", checkFail, tokenError(err), "check the identity (az login, managed identity, workload identity federation)")
		return
	}
	d.add("graph token", checkPass, "a token for "+graph.Scope+" was issued", "")
	tid, ok := tokenTenant(tok.Token)
	switch {
	case !ok:
		d.add("tenant id matches the token", checkSkip, "not observable: the token carries no tenant claim (the local emulator's does not)", "")
	case !strings.EqualFold(tid, d.cfg.TenantID):
		d.add("tenant id matches the token", checkFail, fmt.Sprintf("the token is for tenant %s, TPE_TENANT_ID is %s", tid, d.cfg.TenantID),
			"set TPE_TENANT_ID to the directory the identity belongs to")
	default:
		d.add("tenant id matches the token", checkPass, "the token's tid is TPE_TENANT_ID", "")
	}
}

// tokenError describes a credential failure without anything the credential returned
// beyond its message.
func tokenError(err error) string {
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) && af.RawResponse != nil {
		return fmt.Sprintf("the token request was refused (HTTP %d)", af.RawResponse.StatusCode)
	}
	return err.Error()
}

// tokenTenant reads the tid claim of a JWT access token (the signature is not checked: it
// only says which tenant issued it).
func tokenTenant(token string) (string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	var claims struct {
		TID string `json:"tid"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.TID == "" {
		return "", false
	}
	return claims.TID, true
}

// graph checks each permission the worker uses with the call the worker makes.
func (d *doctor) graph(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, doctorCheckTimeout)
	defer cancel()
	_, err := d.svc.graph.User(ctx, probeObjectID)
	if worker.IsNotFound(err) {
		d.add("graph User.Read.All", checkPass, "a user read with the policy's $select answered 404 for an absent user", "")
	} else {
		d.add("graph User.Read.All", checkFail, graphDetail(err), "grant the application permission User.Read.All and admin consent")
	}
	groups := d.cfg.ScopeGroups
	if len(groups) == 0 {
		d.add("graph scope groups", checkSkip, "no scope groups: the whole tenant is in scope", "")
		return
	}
	user := d.someUser(ctx)
	_, err = d.svc.graph.MemberOf(ctx, user, groups)
	switch {
	case err == nil, worker.IsNotFound(err) && user == probeObjectID:
		d.add("graph GroupMember.Read.All", checkPass, fmt.Sprintf("checkMemberGroups on the %d scope group(s) answered", len(groups)), "")
	default:
		d.add("graph GroupMember.Read.All", checkFail, graphDetail(err), "grant the application permission GroupMember.Read.All and admin consent")
	}
	// The read every message makes: the user and its memberships in one $batch, which the
	// single calls above do not exercise.
	_, _, err = d.svc.graph.UserInGroups(ctx, user, groups)
	switch {
	case err == nil, worker.IsNotFound(err) && user == probeObjectID:
		d.add("graph worker read", checkPass, "the read every message makes (the user and its transitiveMemberOf in one $batch) answered", "")
	default:
		d.add("graph worker read", checkFail, graphDetail(err),
			"every message reads the user and its memberships (transitiveMemberOf, needs User.Read.All) in one POST /v1.0/$batch: consent User.Read.All and let nothing between the worker and Graph refuse $batch")
	}
	for _, g := range groups {
		ok, err := d.svc.graph.GroupExists(ctx, g)
		switch {
		case err != nil:
			d.add("scope group "+g, checkFail, graphDetail(err), "grant GroupMember.Read.All (or Group.Read.All) so the group can be read")
		case !ok:
			d.add("scope group "+g, checkFail, "the directory holds no such group: every member check would say no, and a resync would revoke everyone as out of scope",
				"fix TPE_SCOPE_GROUPS (the group's object id, not its name)")
		default:
			d.add("scope group "+g, checkPass, "exists", "")
		}
	}
}

// someUser is a Teams user of the tenant to check memberships of (a membership read of an
// absent user answers 404 before it proves anything); the probe id when none is found.
func (d *doctor) someUser(ctx context.Context) string {
	for u, err := range d.svc.dir.TeamsUsers(ctx) {
		if err == nil && u.ID != "" {
			return u.ID
		}
		break
	}
	return probeObjectID
}

func graphDetail(err error) string {
	if err == nil {
		return "an answer that was not understood"
	}
	return err.Error()
}

// subscriptions checks that each resource the keeper keeps has a subscription to the
// configured target that does not expire soon.
func (d *doctor) subscriptions(ctx context.Context) {
	target, err := notificationURL(d.cfg)
	switch {
	case err != nil:
		d.add("subscriptions", checkFail, err.Error(), "fix TPE_EVENT_GRID or TPE_WEBHOOK_URL")
		return
	case target == "":
		d.add("subscriptions", checkSkip, "no notification target (TPE_EVENT_GRID or TPE_WEBHOOK_URL): only the scheduled resync keeps ACS in step", "")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorCheckTimeout)
	defer cancel()
	subs, err := adapt.Subscriptions{Client: d.svc.graph}.ListSubscriptions(ctx)
	if err != nil {
		d.add("subscriptions", checkFail, graphDetail(err), "the identity must be the application that owns the subscriptions")
		return
	}
	for _, res := range subscriptions.SubscriptionResources(d.cfg.ScopeGroups) {
		d.subscription(res, target, subs)
	}
}

func (d *doctor) subscription(resource, target string, subs []subscriptions.Subscription) {
	name := "subscription " + resource
	var other *subscriptions.Subscription
	for i, s := range subs {
		if !strings.EqualFold(strings.Trim(s.Resource, "/"), resource) {
			continue
		}
		if s.NotificationURL != target {
			other = &subs[i]
			continue
		}
		left := time.Until(s.ExpirationDateTime)
		switch {
		case left <= 0:
			d.add(name, checkFail, "expired "+s.ExpirationDateTime.UTC().Format(time.RFC3339), "tpe-provisioner subscribe (run renews while it runs)")
		case left < 24*time.Hour:
			d.add(name, checkWarn, "expires in "+left.Round(time.Minute).String(), "is run up? it renews subscriptions; tpe-provisioner subscribe renews now")
		default:
			d.add(name, checkPass, fmt.Sprintf("%s, expires in %s", s.ID, left.Round(time.Hour)), "")
		}
		return
	}
	if other != nil {
		d.add(name, checkFail, fmt.Sprintf("subscription %s points at %s, not the configured target", other.ID, other.NotificationURL),
			"delete it (subscribe --delete with the settings that created it), then tpe-provisioner subscribe: Graph refuses a second subscription for the same resource and change type")
		return
	}
	d.add(name, checkWarn, "missing", "tpe-provisioner subscribe (run also creates it on start)")
}

// serviceBus checks the queue: reachable, present, receive rights (peek is read-only), the
// dead letters waiting, and where the identity may read them the queue's settings.
func (d *doctor) serviceBus(ctx context.Context) {
	if d.cfg.ServiceBusConnectionString == "" && d.cfg.ServiceBusNamespace == "" {
		d.add("service bus", checkSkip, "no queue configured (run reads a file with --source file:PATH)", "")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorCheckTimeout)
	defer cancel()
	client, err := servicebus.NewClient(sbConfig(d.cfg))
	if err != nil {
		d.add("service bus", checkFail, err.Error(), "fix SERVICEBUS_CONNECTION_STRING or SERVICEBUS_NAMESPACE")
		return
	}
	defer client.Close(context.WithoutCancel(ctx))
	if !d.peek(ctx, client, nil, "service bus queue "+d.cfg.ServiceBusQueue) {
		return
	}
	d.peek(ctx, client, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter}, "dead letters")
	d.queueSettings(ctx)
}

// peek peeks one message: it needs Listen rights and changes nothing.
func (d *doctor) peek(ctx context.Context, client *azservicebus.Client, o *azservicebus.ReceiverOptions, name string) bool {
	r, err := client.NewReceiverForQueue(d.cfg.ServiceBusQueue, o)
	if err == nil {
		defer r.Close(context.WithoutCancel(ctx))
		var msgs []*azservicebus.ReceivedMessage
		if msgs, err = r.PeekMessages(ctx, 100, nil); err == nil {
			switch {
			case o == nil:
				d.add(name, checkPass, "reachable, the queue exists, and peek (receive rights) works", "")
			case len(msgs) > 0:
				d.add(name, checkWarn, fmt.Sprintf("%d dead letter(s) or more waiting", len(msgs)), "tpe-provisioner deadletters list")
			default:
				d.add(name, checkPass, "the dead-letter sub-queue is empty", "")
			}
			return true
		}
	}
	detail := servicebus.Redact(servicebus.Explain(err), d.cfg.ServiceBusConnectionString).Error()
	if errors.Is(err, context.DeadlineExceeded) {
		detail = "no answer within " + doctorCheckTimeout.String()
	}
	d.add(name, checkFail, detail, "check SERVICEBUS_QUEUE, and that the identity holds Azure Service Bus Data Receiver (or the key Listen) on it")
	return false
}

// queueSettings compares the queue's settings with what the worker needs. The
// administration API needs Manage rights (or a reader role) and is not served by every
// local endpoint: when it cannot be read this is a warning, never a failure.
func (d *doctor) queueSettings(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	opts := &admin.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}
	var ac *admin.Client
	var err error
	if d.cfg.ServiceBusConnectionString != "" {
		ac, err = admin.NewClientFromConnectionString(d.cfg.ServiceBusConnectionString, opts)
	} else {
		var cred azcore.TokenCredential
		if cred, err = azidentity.NewDefaultAzureCredential(nil); err == nil {
			ac, err = admin.NewClient(d.cfg.ServiceBusNamespace, cred, opts)
		}
	}
	var q *admin.GetQueueResponse
	if err == nil {
		q, err = ac.GetQueue(ctx, d.cfg.ServiceBusQueue, nil)
	}
	switch {
	case err != nil:
		d.add("queue settings", checkWarn, "could not read queue settings: "+oneLine(servicebus.Redact(err, d.cfg.ServiceBusConnectionString).Error(), 160),
			"check them in the portal: duplicate detection on, lock duration ≥ 30 s, max delivery count ≥ 5, sessions off")
		return
	case q == nil:
		d.add("queue settings", checkFail, "the administration API says the queue does not exist", "create it (deploy/bicep) or fix SERVICEBUS_QUEUE")
		return
	}
	d.queueProperties(q.QueueProperties)
}

func (d *doctor) queueProperties(p admin.QueueProperties) {
	if p.RequiresSession != nil && *p.RequiresSession {
		d.add("queue sessions", checkFail, "the queue requires sessions; the worker receives without a session", "use a queue without sessions")
	} else {
		d.add("queue sessions", checkPass, "off, as the worker receives", "")
	}
	if p.RequiresDuplicateDetection != nil && *p.RequiresDuplicateDetection {
		d.add("queue duplicate detection", checkPass, "on, window "+deref(p.DuplicateDetectionHistoryTimeWindow), "")
	} else {
		d.add("queue duplicate detection", checkWarn, "off: every Event Grid redelivery and fan-out retry is processed again (harmless, but costs reads)",
			"recreate the queue with requiresDuplicateDetection (it cannot be switched on later)")
	}
	if lock, ok := isoDuration(deref(p.LockDuration)); !ok || lock < 30*time.Second {
		d.add("queue lock duration", checkWarn, "lock duration "+deref(p.LockDuration)+": the worker renews locks, but a short lock costs renewals and risks redeliveries", "set it to PT1M or more")
	} else {
		d.add("queue lock duration", checkPass, lock.String(), "")
	}
	if p.MaxDeliveryCount == nil || *p.MaxDeliveryCount < 5 {
		d.add("queue max delivery count", checkWarn, fmt.Sprintf("%d: a few transient failures dead-letter a message", derefInt(p.MaxDeliveryCount)), "set it to 10 (the default)")
	} else {
		d.add("queue max delivery count", checkPass, strconv.Itoa(int(*p.MaxDeliveryCount)), "")
	}
}

func derefInt(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// isoDuration parses the ISO 8601 durations Service Bus uses (PT1M, PT30S, PT1H5M, P1D).
func isoDuration(s string) (time.Duration, bool) {
	s, ok := strings.CutPrefix(strings.ToUpper(s), "P")
	if !ok || s == "" {
		return 0, false
	}
	var total time.Duration
	inTime := false
	num := ""
	for _, r := range s {
		switch {
		case r == 'T':
			inTime = true
		case r >= '0' && r <= '9' || r == '.':
			num += string(r)
		default:
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, false
			}
			unit := map[rune]time.Duration{'D': 24 * time.Hour, 'H': time.Hour, 'M': time.Minute, 'S': time.Second}[r]
			if r == 'M' && !inTime || unit == 0 {
				return 0, false // months are not a duration
			}
			total += time.Duration(n * float64(unit))
			num = ""
		}
	}
	return total, num == ""
}

func printChecks(w io.Writer, checks []check) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range checks {
		line := c.Detail
		if c.Fix != "" && (c.Status == checkFail || c.Status == checkWarn) {
			line += " — fix: " + c.Fix
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Status, c.Name, line)
	}
	_ = tw.Flush()
}
