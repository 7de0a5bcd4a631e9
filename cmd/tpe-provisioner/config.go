package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of every subcommand, built only here: defaults, then the
// environment, then flags. No other package reads the environment.
type Config struct {
	ACSConnectionString    string // secret
	ACSEndpoint            string
	ACSAPIVersion          string
	ACSResourceAccountType string
	GraphEndpoint          string

	TenantID               string
	ClientIDs              []string
	ClientState            string // secret
	ScopeGroups            []string
	AllowGuests            bool
	ManageResourceAccounts bool
	DryRun                 bool
	SweepOutOfScope        bool
	QueueOverrides         bool

	Concurrency      int
	MessageTimeout   time.Duration
	ShutdownTimeout  time.Duration
	HTTPListen       string
	ResyncInterval   time.Duration
	MaxRevokes       int
	MaxRevokePercent float64
	LogLevel         string
	LogFormat        string

	ServiceBusNamespace        string
	ServiceBusConnectionString string // secret
	ServiceBusQueue            string

	EventGrid   string
	WebhookURL  string
	RelayListen string

	// RenewSubscriptions makes run create and renew the Graph subscriptions itself; off
	// when one scheduled `subscribe` does it for every replica.
	RenewSubscriptions bool
}

// setting binds one Config field to its environment variable and flag. The table below is
// the single source of the defaults and of the README's configuration table.
type setting struct {
	group                 settingGroup
	env, flag, def, usage string
	secret                bool
	bind                  func(c *Config) flag.Value
}

var settings = []setting{
	{groupACS, "ACS_CONNECTION_STRING", "acs-connection-string", "", "ACS connection string `endpoint=...;accesskey=...` (HMAC auth); takes precedence over ACS_ENDPOINT", true, str(func(c *Config) *string { return &c.ACSConnectionString })},
	{groupACS, "ACS_ENDPOINT", "acs-endpoint", "", "ACS endpoint `https://<resource>.communication.azure.com`, authenticated with Entra ID (DefaultAzureCredential)", false, str(func(c *Config) *string { return &c.ACSEndpoint })},
	{groupACS, "ACS_API_VERSION", "acs-api-version", "2025-06-30", "teamsExtension assignments API version", false, str(func(c *Config) *string { return &c.ACSAPIVersion })},
	{groupACS, "ACS_RESOURCE_ACCOUNT_TYPE", "acs-resource-account-type", "teamsResourceAccount", "wire name sent for resource accounts (teamsResourceAccount, or resourceAccount as in the OpenAPI enum)", false, str(func(c *Config) *string { return &c.ACSResourceAccountType })},
	{groupGraph, "GRAPH_ENDPOINT", "graph-endpoint", "https://graph.microsoft.com", "Microsoft Graph base URL (http:// only for a loopback emulator)", false, str(func(c *Config) *string { return &c.GraphEndpoint })},
	{groupTenant, "TPE_TENANT_ID", "tenant-id", "", "our Entra tenant id; notifications naming another tenant are untrusted", false, str(func(c *Config) *string { return &c.TenantID })},
	{groupPolicy, "TPE_CLIENT_IDS", "client-ids", "", "comma-separated Entra app client ids granted to Teams users (the only ids we add or remove)", false, list(func(c *Config) *[]string { return &c.ClientIDs })},
	{groupTrust, "TPE_CLIENT_STATE", "client-state", "", "Graph subscription clientState; notifications must carry it", true, str(func(c *Config) *string { return &c.ClientState })},
	{groupPolicy, "TPE_SCOPE_GROUPS", "scope-groups", "", "comma-separated group ids; only their transitive members are eligible (empty = whole tenant)", false, list(func(c *Config) *[]string { return &c.ScopeGroups })},
	{groupPolicy, "TPE_ALLOW_GUESTS", "allow-guests", "false", "make guests (userType Guest) eligible", false, boolean(func(c *Config) *bool { return &c.AllowGuests })},
	{groupPolicy, "TPE_MANAGE_RESOURCE_ACCOUNTS", "manage-resource-accounts", "false", "allow deleting resource-account assignments (they are only created otherwise)", false, boolean(func(c *Config) *bool { return &c.ManageResourceAccounts })},
	{groupPolicy, "TPE_SWEEP_OUT_OF_SCOPE", "sweep-out-of-scope", "true", "with scope groups, backfill and resync also walk every Teams user outside them, so a leaver whose group notification was lost loses our access at the next resync; costs one ACS read per Teams user of the tenant (not only per member); false reads only the members, and such a leaver keeps access until a later notification about them or a backfill with the sweep", false, boolean(func(c *Config) *bool { return &c.SweepOutOfScope })},
	{groupOps, "TPE_QUEUE_OVERRIDES", "queue-overrides", "false", "accept grant and revoke commands from the queue; off, they are dead-lettered as untrusted and only reconcile commands and trusted notifications act (anyone with Send on the queue could otherwise grant or revoke anybody)", false, boolean(func(c *Config) *bool { return &c.QueueOverrides })},
	{groupWork, "TPE_DRY_RUN", "dry-run", "false", "decide and log, never write to ACS", false, boolean(func(c *Config) *bool { return &c.DryRun })},
	{groupWork, "TPE_CONCURRENCY", "concurrency", "16", "reconciles in flight", false, integer(func(c *Config) *int { return &c.Concurrency })},
	{groupOps, "TPE_MESSAGE_TIMEOUT", "message-timeout", "2m", "bound on one message's work", false, duration(func(c *Config) *time.Duration { return &c.MessageTimeout })},
	{groupOps, "TPE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "drain bound after the first SIGTERM/SIGINT", false, duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{groupOps, "TPE_HTTP_LISTEN", "http-listen", ":8080", "address of /healthz, /readyz and /metrics (off = no ops server; a one-shot `run --source file:` serves them only when this is set)", false, str(func(c *Config) *string { return &c.HTTPListen })},
	{groupOps, "TPE_RESYNC_INTERVAL", "resync-interval", "24h", "scheduled full reconcile inside run (0 = none on a schedule; a lifecycle event saying notifications were lost still starts one)", false, duration(func(c *Config) *time.Duration { return &c.ResyncInterval })},
	{groupOps, "TPE_RENEW_SUBSCRIPTIONS", "renew-subscriptions", "true", "create and renew the Graph subscriptions inside run (false when a scheduled `subscribe` does it once for all replicas; lifecycle events are answered either way)", false, boolean(func(c *Config) *bool { return &c.RenewSubscriptions })},
	{groupBrake, "TPE_MAX_REVOKES", "max-revokes", "100", "brake: refuse (apply nothing of) a backfill/resync plan with more revokes than this (-1 = no count limit)", false, integer(func(c *Config) *int { return &c.MaxRevokes })},
	{groupBrake, "TPE_MAX_REVOKE_PERCENT", "max-revoke-percent", "10", "brake: refuse (apply nothing of) a backfill/resync plan of 3 or more revokes that revokes more than this percent of the principals holding an assignment; a real number, 0 = off", false, float(func(c *Config) *float64 { return &c.MaxRevokePercent })},
	{groupLog, "TPE_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", false, str(func(c *Config) *string { return &c.LogLevel })},
	{groupLog, "TPE_LOG_FORMAT", "log-format", "auto", "json, text, or auto: text when stderr is a terminal, JSON otherwise", false, str(func(c *Config) *string { return &c.LogFormat })},
	{groupQueue, "SERVICEBUS_NAMESPACE", "servicebus-namespace", "", "Service Bus namespace FQDN `<ns>.servicebus.windows.net` (Entra auth)", false, str(func(c *Config) *string { return &c.ServiceBusNamespace })},
	{groupQueue, "SERVICEBUS_CONNECTION_STRING", "servicebus-connection-string", "", "Service Bus connection string (SAS auth); takes precedence over SERVICEBUS_NAMESPACE", true, str(func(c *Config) *string { return &c.ServiceBusConnectionString })},
	{groupQueue, "SERVICEBUS_QUEUE", "servicebus-queue", "", "queue the notifications and commands arrive on", false, str(func(c *Config) *string { return &c.ServiceBusQueue })},
	{groupSubscriptions, "TPE_EVENT_GRID", "event-grid", "", "Graph partner topic target `azuresubscriptionid=...&resourcegroup=...&partnertopic=...&location=...`", false, str(func(c *Config) *string { return &c.EventGrid })},
	{groupSubscriptions, "TPE_WEBHOOK_URL", "webhook-url", "", "HTTPS notification URL (the relay) instead of Event Grid", false, str(func(c *Config) *string { return &c.WebhookURL })},
	{groupRelay, "TPE_RELAY_LISTEN", "relay-listen", ":8443", "listen address of relay", false, str(func(c *Config) *string { return &c.RelayListen })},
}

// settingGroup names the settings one part of the service reads; a subcommand binds the
// groups of the parts it runs (bindGroups), so none of their settings can be left out of
// its flags. Every setting is read from the environment whatever the groups.
type settingGroup string

const (
	groupACS           settingGroup = "acs"
	groupTenant        settingGroup = "tenant"
	groupGraph         settingGroup = "graph"
	groupPolicy        settingGroup = "policy"
	groupTrust         settingGroup = "trust"
	groupWork          settingGroup = "work"
	groupBrake         settingGroup = "brake"
	groupOps           settingGroup = "ops"
	groupLog           settingGroup = "log"
	groupQueue         settingGroup = "queue"
	groupSubscriptions settingGroup = "subscriptions"
	groupRelay         settingGroup = "relay"
)

// bindGroups is bindFlags with the settings of the given groups as flags.
func (c *Config) bindGroups(fs *flag.FlagSet, getenv func(string) string, groups ...settingGroup) error {
	names := settingsIn(groups...)
	if len(names) == 0 {
		return fmt.Errorf("no settings in groups %v", groups)
	}
	return c.bindFlags(fs, getenv, names...)
}

// settingsIn returns the environment names of the settings in groups, in table order.
func settingsIn(groups ...settingGroup) []string {
	var names []string
	for _, s := range settings {
		if slices.Contains(groups, s.group) {
			names = append(names, s.env)
		}
	}
	return names
}

// bindFlags fills every setting from its default, then from the environment, and registers
// the named ones as flags on fs (all when names is empty); flags parsed later override both.
// Every setting's environment value is parsed: the error names each one that does not
// parse (a *settingError each).
func (c *Config) bindFlags(fs *flag.FlagSet, getenv func(string) string, names ...string) error {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var errs []error
	for _, s := range settings {
		v := s.bind(c)
		if err := v.Set(s.def); err != nil {
			return fmt.Errorf("default of %s: %w", s.env, err)
		}
		if e, ok := lookupEnv(getenv, s.env); ok {
			if err := v.Set(e); err != nil {
				errs = append(errs, &settingError{s.env, err})
			}
		}
		if len(names) == 0 || want[s.env] {
			if s.secret {
				v = secretValue{v}
			}
			fs.Var(v, s.flag, s.usage+" (env "+s.env+")")
		}
	}
	return errors.Join(errs...)
}

// settingError is a bad or missing value of one setting.
type settingError struct {
	env string
	err error
}

func (e *settingError) Error() string { return e.env + ": " + e.err.Error() }
func (e *settingError) Unwrap() error { return e.err }

// settingSource says where the value of the setting env came from: "flag --NAME" when fs
// parsed it, "environment" when set there, "default" otherwise.
func settingSource(fs *flag.FlagSet, env string) string {
	for _, s := range settings {
		if s.env != env {
			continue
		}
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == s.flag })
		if set {
			return "flag --" + s.flag
		}
		if _, ok := lookupEnv(environ, s.env); ok {
			return "environment"
		}
		return "default"
	}
	return "unknown setting"
}

func lookupEnv(getenv func(string) string, k string) (string, bool) {
	v := strings.TrimSpace(getenv(k))
	return v, v != ""
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// needs says which groups of settings a subcommand requires.
type needs struct{ acs, tenant, clientIDs, graph, source, clientState bool }

// Validate names the first bad or missing setting and how to fix it.
func (c *Config) Validate(n needs) error {
	var errs []error
	bad := func(env, format string, a ...any) {
		errs = append(errs, &settingError{env, fmt.Errorf(format, a...)})
	}
	if n.acs && c.ACSConnectionString == "" && c.ACSEndpoint == "" {
		bad("ACS_CONNECTION_STRING", "set it (or ACS_ENDPOINT for Entra ID auth); for a local emulator run `tpe-provisioner emulate` and export the lines it prints")
	}
	if c.ACSEndpoint != "" && c.ACSConnectionString == "" {
		if err := checkURL(c.ACSEndpoint); err != nil {
			bad("ACS_ENDPOINT", "%v", err)
		}
	}
	if (n.tenant || n.acs) && !guidRE.MatchString(c.TenantID) {
		bad("TPE_TENANT_ID", "must be your Entra tenant id (a GUID), got %q", c.TenantID)
	}
	if n.clientState && c.ClientState == "" {
		bad("TPE_CLIENT_STATE", "set the clientState our Graph subscriptions carry: without it no notification can be told from a forgery (`tpe-provisioner emulate` and `demo` set one locally)")
	}
	if n.clientIDs && len(c.ClientIDs) == 0 {
		bad("TPE_CLIENT_IDS", "set the comma-separated Entra app client ids to grant")
	}
	for _, id := range c.ClientIDs {
		if !guidRE.MatchString(id) {
			bad("TPE_CLIENT_IDS", "%q is not a GUID", id)
		}
	}
	for _, id := range c.ScopeGroups {
		if !guidRE.MatchString(id) {
			bad("TPE_SCOPE_GROUPS", "%q is not a GUID", id)
		}
	}
	if n.graph {
		if err := checkURL(c.GraphEndpoint); err != nil {
			bad("GRAPH_ENDPOINT", "%v", err)
		}
	}
	switch c.ACSResourceAccountType {
	case "teamsResourceAccount", "resourceAccount":
	default:
		bad("ACS_RESOURCE_ACCOUNT_TYPE", "must be teamsResourceAccount or resourceAccount, got %q", c.ACSResourceAccountType)
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		bad("TPE_CONCURRENCY", "must be between 1 and 1024, got %d", c.Concurrency)
	}
	if c.MessageTimeout <= 0 {
		bad("TPE_MESSAGE_TIMEOUT", "must be positive, got %s", c.MessageTimeout)
	}
	if c.MaxRevokes < -1 || c.MaxRevokes == 0 {
		bad("TPE_MAX_REVOKES", "must be at least 1, or -1 for no count limit, got %d", c.MaxRevokes)
	}
	if !(c.MaxRevokePercent >= 0 && c.MaxRevokePercent <= 100) { // NaN fails both
		bad("TPE_MAX_REVOKE_PERCENT", "must be a number from 0 (off) to 100, got %v", c.MaxRevokePercent)
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		bad("TPE_LOG_FORMAT", "must be auto, json or text, got %q", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("TPE_LOG_LEVEL", "%v", err)
	}
	if n.source && c.ServiceBusConnectionString == "" && (c.ServiceBusNamespace == "" || c.ServiceBusQueue == "") {
		bad("SERVICEBUS_NAMESPACE", "run needs a queue: set SERVICEBUS_NAMESPACE and SERVICEBUS_QUEUE (or SERVICEBUS_CONNECTION_STRING), or read a file with --source file:PATH; to try it locally: go run ./cmd/tpe-provisioner demo")
	}
	if n.source && c.ServiceBusConnectionString != "" && c.ServiceBusQueue == "" {
		bad("SERVICEBUS_QUEUE", "set the queue name")
	}
	return errors.Join(errs...)
}

// checkURL accepts https anywhere and http only for loopback emulators.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: plain http is allowed only for loopback emulators; use https", raw)
	}
	return fmt.Errorf("%q: scheme must be https", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// flag.Value adapters for the settings table.

// secretValue hides a secret setting from the flag package: a flag's String is its
// default in -h, --help and every usage message, so a secret taken from the environment
// would be printed there in clear text. Set still fills the Config field.
type secretValue struct{ v flag.Value }

func (secretValue) String() string       { return "" }
func (s secretValue) Set(v string) error { return s.v.Set(v) }

type stringValue struct{ p *string }

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v stringValue) Set(s string) error { *v.p = strings.TrimSpace(s); return nil }

func str(f func(*Config) *string) func(*Config) flag.Value {
	return func(c *Config) flag.Value { return stringValue{f(c)} }
}

type listValue struct{ p *[]string }

func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}
func (v listValue) Set(s string) error {
	*v.p = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.ToLower(strings.TrimSpace(part)); part != "" {
			*v.p = append(*v.p, part)
		}
	}
	return nil
}

func list(f func(*Config) *[]string) func(*Config) flag.Value {
	return func(c *Config) flag.Value { return listValue{f(c)} }
}

type boolValue struct{ p *bool }

func (v boolValue) String() string   { return strconv.FormatBool(v.p != nil && *v.p) }
func (v boolValue) IsBoolFlag() bool { return true }
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*v.p = b
	return nil
}

func boolean(f func(*Config) *bool) func(*Config) flag.Value {
	return func(c *Config) flag.Value { return boolValue{f(c)} }
}

type intValue struct{ p *int }

func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	*v.p = n
	return nil
}

func integer(f func(*Config) *int) func(*Config) flag.Value {
	return func(c *Config) flag.Value { return intValue{f(c)} }
}

type floatValue struct{ p *float64 }

func (v floatValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}
func (v floatValue) Set(s string) error {
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	*v.p = n
	return nil
}

func float(f func(*Config) *float64) func(*Config) flag.Value {
	return func(c *Config) flag.Value { return floatValue{f(c)} }
}

type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}
func (v durationValue) Set(s string) error {
	if s == "0" {
		*v.p = 0
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 30s, 2m, 24h)", s)
	}
	*v.p = d
	return nil
}

func duration(f func(*Config) *time.Duration) func(*Config) flag.Value {
	return func(c *Config) flag.Value { return durationValue{f(c)} }
}

// environ is os.Getenv; tests pass their own.
var environ = os.Getenv
