package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tpe-provisioner/tpe-provisioner/acs"
	"github.com/tpe-provisioner/tpe-provisioner/graph"
)

// transportWrap decorates the innermost HTTP transport of a client (metrics, the backfill
// limiter). Nil leaves it alone.
type transportWrap func(http.RoundTripper) http.RoundTripper

func (w transportWrap) apply(rt http.RoundTripper) http.RoundTripper {
	if w == nil {
		return rt
	}
	return w(rt)
}

// credential returns the Entra ID credential for ACS, Graph and Service Bus: azidentity's
// DefaultAzureCredential (environment, workload identity, managed identity, Azure CLI).
// A loopback emulator endpoint gets a fixed local token instead, so the local mode needs no
// Azure account.
func credential(endpoint string) (azcore.TokenCredential, error) {
	if u, err := url.Parse(endpoint); err == nil && u.Scheme == "http" && isLoopback(u.Hostname()) {
		return emulatorCredential{}, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("Entra ID credential: %w", err)
	}
	return cred, nil
}

// emulatorCredential hands a constant token to the loopback emulators.
type emulatorCredential struct{}

func (emulatorCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "local-emulator-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// newTransport is http.DefaultTransport keeping enough idle connections per host for the
// configured concurrency. The default keeps two: under load every call beyond two
// concurrent ones closed its connection afterwards and the next call opened a new one (a
// TLS handshake with Azure, and TIME_WAIT sockets piling up).
func newTransport(c *Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(2*c.Concurrency, 2)
	t.MaxIdleConns = max(t.MaxIdleConns, 2*t.MaxIdleConnsPerHost)
	return t
}

// newACSClient builds the assignments client: HMAC when a connection string is set, Entra
// ID otherwise.
func newACSClient(c *Config, log *slog.Logger, wrap transportWrap) (*acs.Client, error) {
	o := &acs.Options{
		APIVersion:              c.ACSAPIVersion,
		ResourceAccountWireName: c.ACSResourceAccountType,
		Logger:                  log,
	}
	o.Transport = &http.Client{Transport: wrap.apply(newTransport(c))}
	if c.ACSConnectionString != "" {
		return acs.NewClientFromConnectionString(c.ACSConnectionString, o)
	}
	cred, err := credential(c.ACSEndpoint)
	if err != nil {
		return nil, err
	}
	return acs.NewClient(c.ACSEndpoint, cred, o)
}

// newGraphClient builds the directory client.
func newGraphClient(c *Config, log *slog.Logger, wrap transportWrap) (*graph.Client, error) {
	cred, err := credential(c.GraphEndpoint)
	if err != nil {
		return nil, err
	}
	return graph.NewClient(cred, &graph.Options{
		Endpoint:   c.GraphEndpoint,
		HTTPClient: &http.Client{Transport: wrap.apply(newTransport(c)), Timeout: 60 * time.Second},
		Logger:     log,
	})
}
