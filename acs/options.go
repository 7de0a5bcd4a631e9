package acs

import (
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Defaults applied by the constructors to zero-valued Options fields.
const (
	// DefaultAPIVersion is the GA version of the assignments API.
	DefaultAPIVersion = "2025-06-30"
	// DefaultResourceAccountWireName is the principalType the documentation gives for
	// resource accounts. The published OpenAPI enum says "resourceAccount" instead.
	DefaultResourceAccountWireName = "teamsResourceAccount"
	// DefaultMaxThrottleWait is the longest Retry-After the client sleeps through.
	DefaultMaxThrottleWait = 2 * time.Minute
	// DefaultMaxRetries is how many times a failed try is retried.
	DefaultMaxRetries = 4
	// DefaultTryTimeout bounds one try, so a stalled connection is retried rather than
	// waited on until the caller's deadline.
	DefaultTryTimeout = 30 * time.Second
)

// APIVersions lists the published versions of the assignments API.
var APIVersions = []string{"2025-03-02-preview", "2025-06-30"}

// Options configures a Client. A nil *Options or a zero field means the default.
type Options struct {
	// ClientOptions configures the azcore pipeline (transport, logging, telemetry, retry).
	// Retry.MaxRetries defaults to DefaultMaxRetries, Retry.TryTimeout to DefaultTryTimeout
	// and Retry.StatusCodes to 408, 429, 500, 502, 503, 504. Retry.MaxRetryDelay is always
	// set from MaxThrottleWait. ClientOptions.APIVersion is ignored: use APIVersion.
	azcore.ClientOptions

	// APIVersion is the api-version query parameter. Empty means DefaultAPIVersion.
	APIVersion string

	// ResourceAccountWireName is the principalType sent when writing a resource account
	// assignment: "teamsResourceAccount" (empty means this) or "resourceAccount".
	ResourceAccountWireName string

	// MaxThrottleWait is the longest wait the client honours when the service answers with
	// Retry-After (and the cap of the exponential backoff between other retries). A longer
	// Retry-After ends the call at once with a *ThrottledError carrying the wait. Zero means
	// DefaultMaxThrottleWait.
	MaxThrottleWait time.Duration

	// Now is the clock used to date HMAC signatures. Nil means time.Now.
	Now func() time.Time

	// Logger receives one Debug record per try (method, path, status, ms-cv, try number).
	// Nil discards them. Records never hold the key, a signature or a token.
	Logger *slog.Logger
}

// withDefaults returns a copy of o with every zero field set to its default.
func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.ResourceAccountWireName == "" {
		c.ResourceAccountWireName = DefaultResourceAccountWireName
	}
	if c.MaxThrottleWait <= 0 {
		c.MaxThrottleWait = DefaultMaxThrottleWait
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Retry.MaxRetries == 0 {
		c.Retry.MaxRetries = DefaultMaxRetries
	}
	if c.Retry.TryTimeout == 0 {
		c.Retry.TryTimeout = DefaultTryTimeout
	}
	if c.Retry.StatusCodes == nil {
		c.Retry.StatusCodes = []int{408, 429, 500, 502, 503, 504}
	}
	// azcore gives up at once when Retry-After exceeds MaxRetryDelay; making the two equal
	// lets a throttled call wait as asked up to MaxThrottleWait, and classify anything longer.
	c.Retry.MaxRetryDelay = c.MaxThrottleWait
	c.ClientOptions.APIVersion = ""
	return c
}

// validate reports settings that no default can fix.
func (o *Options) validate() error {
	switch o.ResourceAccountWireName {
	case "teamsResourceAccount", "resourceAccount":
	default:
		return &ValidationError{Field: "ResourceAccountWireName", Reason: "must be teamsResourceAccount or resourceAccount"}
	}
	if o.APIVersion == "" {
		return &ValidationError{Field: "APIVersion", Reason: "must not be empty"}
	}
	return nil
}
