package acs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// Scope is the Microsoft Entra ID scope of the ACS data plane (the Azure SDKs spell it with
// the double slash).
const Scope = "https://communication.azure.com//.default"

const (
	moduleName    = "tpe-provisioner/acs"
	moduleVersion = "v1.0.0"
)

// Client reads and writes Teams Phone extensibility access assignments of one ACS resource.
// It is safe for concurrent use.
type Client struct {
	endpoint   string
	pl         runtime.Pipeline
	apiVersion string
	raName     string
	maxWait    time.Duration
}

// NewClientFromConnectionString returns a client that signs requests with the access key of
// a connection string "endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>".
// Errors never repeat the key.
func NewClientFromConnectionString(cs string, o *Options) (*Client, error) {
	parsed, err := parseConnectionString(cs)
	if err != nil {
		return nil, err
	}
	opts := o.withDefaults()
	return newClient(parsed.endpoint.String(), opts, newHMACPolicy(parsed.key, opts.Now))
}

// NewClient returns a client that authenticates with Microsoft Entra ID tokens from cred
// (for scope Scope). endpoint is https://<resource>.communication.azure.com; plain http is
// accepted only for a loopback host, the one case where the token may travel unencrypted.
func NewClient(endpoint string, cred azcore.TokenCredential, o *Options) (*Client, error) {
	if cred == nil {
		return nil, &ValidationError{Field: "credential", Reason: "must not be nil"}
	}
	u, err := parseEndpoint(strings.TrimSpace(endpoint))
	if err != nil {
		return nil, err
	}
	opts := o.withDefaults()
	auth := runtime.NewBearerTokenPolicy(cred, []string{Scope}, &policy.BearerTokenOptions{
		InsecureAllowCredentialWithHTTP: u.Scheme == "http", // parseEndpoint allows http only for loopback
	})
	return newClient(u.String(), opts, auth)
}

func newClient(endpoint string, opts Options, auth policy.Policy) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cp := opts.ClientOptions
	// The signer runs last among the per-retry policies so it signs exactly what is sent.
	cp.PerRetryPolicies = append(slices.Clone(cp.PerRetryPolicies), auth)
	pl := runtime.NewPipeline(moduleName, moduleVersion, runtime.PipelineOptions{
		AllowedHeaders: []string{headerCorrelation, headerRetryAfter, headerRetryAfterMS, headerXMSRetryMS},
		PerRetry:       []policy.Policy{&tryLogger{log: opts.Logger}},
	}, &cp)
	return &Client{
		endpoint:   endpoint,
		pl:         pl,
		apiVersion: opts.APIVersion,
		raName:     opts.ResourceAccountWireName,
		maxWait:    opts.MaxThrottleWait,
	}, nil
}

// Endpoint returns the resource endpoint the client talks to.
func (c *Client) Endpoint() string { return c.endpoint }

// do sends one call through the pipeline (retries included) and returns the response when
// its status is one of ok; anything else becomes a classified error.
func (c *Client) do(ctx context.Context, op, method, path string, body any, ok ...int) (*http.Response, error) {
	req, err := runtime.NewRequest(withTryCounter(ctx), method, runtime.JoinPaths(c.endpoint, path))
	if err != nil {
		return nil, fmt.Errorf("acs: %s: build request: %w", op, err)
	}
	req.Raw().URL.RawQuery = "api-version=" + c.apiVersion
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return nil, fmt.Errorf("acs: %s: encode body: %w", op, err)
		}
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		return nil, c.sendError(ctx, op, err)
	}
	if runtime.HasStatusCode(resp, ok...) {
		return resp, nil
	}
	return nil, c.responseError(op, resp)
}

// nonRetriable is how azcore marks errors its retry policy must not retry; in this pipeline
// only the bearer policy raises them (no token, or a token refused for plain http).
type nonRetriable interface{ NonRetriable() }

// sendError classifies a call that got no response.
func (c *Client) sendError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("acs: %s: %w", op, err) // the caller gave up; not the service's doing
	}
	var nr nonRetriable
	if errors.As(err, &nr) {
		return &CredentialError{Op: op, Err: err}
	}
	return &TransportError{Op: op, Err: err}
}

// responseError turns an unexpected answer into a *ResponseError, or a *ThrottledError when
// the service asked for a wait longer than the client would sleep.
func (c *Client) responseError(op string, resp *http.Response) error {
	body, _ := runtime.Payload(resp)
	code, msg := parseErrorBody(body)
	re := &ResponseError{
		Op:                 op,
		StatusCode:         resp.StatusCode,
		ErrorCode:          code,
		Message:            msg,
		CorrelationID:      resp.Header.Get(headerCorrelation),
		RetryAfterDuration: retryAfter(resp.Header, time.Now()),
	}
	if re.Temporary() && re.RetryAfterDuration > c.maxWait {
		return &ThrottledError{Op: op, Wait: re.RetryAfterDuration, Limit: c.maxWait, Response: re}
	}
	return re
}
