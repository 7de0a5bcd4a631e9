package acs

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Log keys of the per-try records.
const (
	logKeyMethod     = "method"
	logKeyPath       = "path"
	logKeyTry        = "try"
	logKeyStatus     = "status"
	logKeyCV         = "ms_cv"
	logKeyRetryAfter = "retry_after"
	logKeyElapsed    = "elapsed"
	logKeyError      = "error"
)

// tryCounterKey carries the per-call try counter through the pipeline.
type tryCounterKey struct{}

func withTryCounter(ctx context.Context) context.Context {
	return context.WithValue(ctx, tryCounterKey{}, new(atomic.Int32))
}

// tryLogger is a per-retry policy that records each try at Debug level: what was asked,
// what came back and the ms-cv. It logs no header other than ms-cv and Retry-After, so
// neither the signature nor a token can reach the log.
type tryLogger struct {
	log *slog.Logger
}

// Do implements policy.Policy.
func (p *tryLogger) Do(req *policy.Request) (*http.Response, error) {
	ctx := req.Raw().Context()
	if !p.log.Enabled(ctx, slog.LevelDebug) {
		return req.Next()
	}
	try := int32(0)
	if n, ok := ctx.Value(tryCounterKey{}).(*atomic.Int32); ok {
		try = n.Add(1)
	}
	start := time.Now()
	resp, err := req.Next()
	attrs := []slog.Attr{
		slog.String(logKeyMethod, req.Raw().Method),
		slog.String(logKeyPath, req.Raw().URL.Path),
		slog.Int(logKeyTry, int(try)),
		slog.Duration(logKeyElapsed, time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String(logKeyError, err.Error()))
	} else {
		attrs = append(attrs,
			slog.Int(logKeyStatus, resp.StatusCode),
			slog.String(logKeyCV, resp.Header.Get(headerCorrelation)))
		if ra := retryAfter(resp.Header, time.Now()); ra > 0 {
			attrs = append(attrs, slog.Duration(logKeyRetryAfter, ra))
		}
	}
	p.log.LogAttrs(ctx, slog.LevelDebug, "acs try", attrs...)
	return resp, err
}
