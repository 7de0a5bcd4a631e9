package graph

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	abs "github.com/microsoft/kiota-abstractions-go"
	absauth "github.com/microsoft/kiota-abstractions-go/authentication"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	core "github.com/microsoftgraph/msgraph-sdk-go-core"
	coreauth "github.com/microsoftgraph/msgraph-sdk-go-core/authentication"
)

// DefaultEndpoint is the global Microsoft Graph endpoint.
const DefaultEndpoint = "https://graph.microsoft.com"

// Scope is the token scope the client asks the credential for.
const Scope = "https://graph.microsoft.com/.default"

// DefaultPageSize is Graph's largest page for user listings.
const DefaultPageSize = 999

// graphHosts are the national-cloud Graph hosts the SDK authenticates by default.
var graphHosts = []string{"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us",
	"graph.microsoft.de", "microsoftgraph.chinacloudapi.cn", "canary.graph.microsoft.com"}

// Options configure a Client. The zero value (or nil) talks to DefaultEndpoint with
// DefaultPageSize pages and 3 retries.
type Options struct {
	// Endpoint is the Graph root without /v1.0 (default DefaultEndpoint). http:// is
	// accepted only for loopback hosts (the graphtest emulator).
	Endpoint string
	// HTTPClient supplies the transport (and timeout) under the SDK's middleware; nil uses
	// http.DefaultTransport and a 100 s timeout.
	HTTPClient *http.Client
	// MaxRetries bounds retries of 429/503/504 (Retry-After honoured to the millisecond; a
	// wait that would take one call past 3 minutes ends it with the answer instead). 0 means
	// 3; negative disables retries; at most 10.
	MaxRetries int
	// PageSize is $top for listings (default and maximum 999).
	PageSize int
	// Logger receives retry and paging diagnostics (never tokens or client state); nil
	// discards them.
	Logger *slog.Logger
}

// Client reads the directory and manages subscriptions through msgraph-sdk-go. It is safe
// for concurrent use.
type Client struct {
	sdk       *msgraphsdk.GraphServiceClient
	adapter   abs.RequestAdapter // the SDK's, for the reads decoded in wire.go
	pageSize  int32
	log       *slog.Logger
	calls     atomic.Int64
	pageCount atomic.Int64
	// maxRetries is the retry handler's bound (< 0: none), which UserInGroups applies to
	// the inner requests of its batch.
	maxRetries int
	// http is the SDK's middleware over the counted transport (httpClient), tokens the
	// SDK's token provider and batchURL the $batch endpoint: sendBatch posts through them
	// without kiota's request and response objects (batch.go).
	http     *http.Client
	tokens   absauth.AccessTokenProvider
	batchURL *url.URL
}

// NewClient builds a client whose requests carry a bearer token for Scope from cred.
//
// Build clients before using any: msgraph-sdk-go's constructor sets a package-level default
// (kiota's backing store factory) that every model constructor reads, so constructing a
// client while another is decoding responses is a data race. A process needs one client;
// tests that need several build them up front.
func NewClient(cred azcore.TokenCredential, o *Options) (*Client, error) {
	if cred == nil {
		return nil, fmt.Errorf("graph: a token credential is required")
	}
	if o == nil {
		o = &Options{}
	}
	endpoint, host, err := parseEndpoint(o.Endpoint)
	if err != nil {
		return nil, err
	}
	c := &Client{pageSize: DefaultPageSize, log: o.Logger}
	if o.PageSize > 0 && o.PageSize < DefaultPageSize {
		c.pageSize = int32(o.PageSize)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	auth, err := coreauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{Scope}, slices.Concat(graphHosts, []string{host}))
	if err != nil {
		return nil, fmt.Errorf("graph: auth provider: %w", err)
	}
	httpClient, err := c.httpClient(o)
	if err != nil {
		return nil, err
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("graph: request adapter: %w", err)
	}
	adapter.SetBaseUrl(endpoint + "/v1.0")
	c.http, c.tokens = httpClient, auth.GetAuthorizationTokenProvider()
	if c.batchURL, err = url.Parse(endpoint + "/v1.0/$batch"); err != nil {
		return nil, fmt.Errorf("graph: batch endpoint: %w", err)
	}
	c.sdk = msgraphsdk.NewGraphServiceClient(adapter)
	c.adapter = adapter
	return c, nil
}

// parseEndpoint validates the endpoint and returns it without a trailing slash, and its
// host name (for the token's allowed hosts).
func parseEndpoint(raw string) (endpoint, host string, err error) {
	if raw == "" {
		raw = DefaultEndpoint
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("graph: endpoint %q is not an absolute URL", raw)
	}
	if u.Path != "" || u.RawQuery != "" {
		return "", "", fmt.Errorf("graph: endpoint %q must have no path (the client adds /v1.0)", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return "", "", fmt.Errorf("graph: endpoint %q must be https (http only for loopback hosts)", raw)
	}
	return u.String(), u.Hostname(), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpClient is the SDK's middleware (telemetry, retry, redirect, ...) over a transport
// that counts every request sent, retries included.
func (c *Client) httpClient(o *Options) (*http.Client, error) {
	base, timeout := http.DefaultTransport, 100*time.Second
	if o.HTTPClient != nil {
		if o.HTTPClient.Transport != nil {
			base = o.HTTPClient.Transport
		}
		if o.HTTPClient.Timeout > 0 {
			timeout = o.HTTPClient.Timeout
		}
	}
	kiota, err := khttp.GetDefaultMiddlewaresWithOptions(
		// Request bodies go uncompressed: they are small, and a retried gzip body is not
		// rewindable.
		khttp.NewCompressionOptionsReference(false),
	)
	if err != nil {
		return nil, fmt.Errorf("graph: middleware: %w", err)
	}
	telemetry := msgraphsdk.GetDefaultClientOptions()
	retry := newRetryHandler(o.MaxRetries, c.log)
	c.maxRetries = retry.maxRetries
	mw := []khttp.Middleware{
		core.NewGraphTelemetryHandler(&telemetry),
		khttp.NewUrlReplaceHandler(true, core.ReplacementPairs),
		retry,
	}
	for _, m := range kiota {
		if _, isRetry := m.(*khttp.RetryHandler); !isRetry { // retry.go replaces it
			mw = append(mw, m)
		}
	}
	counted := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.calls.Add(1)
		return base.RoundTrip(r)
	})
	return &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(counted, mw...),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // the SDK's redirect handler follows redirects
		},
	}, nil
}

// Calls returns how many HTTP requests the client has sent, retries included.
func (c *Client) Calls() int64 { return c.calls.Load() }

// Pages returns how many listing pages of users the client has read (for backfill
// summaries: a full listing costs about users/999 pages).
func (c *Client) Pages() int64 { return c.pageCount.Load() }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
