package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
)

// JSON batching (concepts/json-batching.md): POST /v1.0/$batch with
// {"requests":[{id, method, url, headers, body}]} — at most 20 requests, ids unique, urls
// relative to the version root — answers 200 {"responses":[{id, status, headers, body}]}
// in any order, or 400 when the batch itself is malformed. Each request is throttled on its
// own ("Requests in a batch are evaluated individually against the applicable throttling
// limits"), so one inner request may answer 429 with its Retry-After while the others
// succeed. The batch is sent through the SDK's adapter like every other call: the same
// token, telemetry, retry of the envelope (429/503/504, retry.go) and error mapping; only the
// body is built and read here, with encoding/json, instead of through the SDK's batch
// helpers (msgraph-sdk-go-core's BatchRequest parses every inner body through kiota's
// parse nodes, the CPU that wire.go avoids).

// batchItem is one request of a batch.
type batchItem struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

// batchAnswer is one response of a batch.
type batchAnswer struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// sendBatch sends items as one $batch and returns the answers by id (ids compared as
// sent: the client chooses them). An answer for an id not sent, or twice for one, is an
// incomplete answer; a missing one is left for the caller to notice.
func (c *Client) sendBatch(ctx context.Context, items []batchItem) (map[string]batchAnswer, error) {
	body, err := json.Marshal(map[string]any{"requests": items})
	if err != nil {
		return nil, err
	}
	info := abs.NewRequestInformationWithMethodAndUrlTemplateAndPathParameters(abs.POST, "{+baseurl}/$batch", map[string]string{})
	info.Headers.TryAdd("Accept", "application/json")
	info.SetStreamContentAndContentType(body, "application/json")
	var resp struct {
		Responses *[]batchAnswer `json:"responses"`
	}
	if err := c.getJSON(ctx, info, &resp); err != nil {
		return nil, err
	}
	if resp.Responses == nil {
		return nil, &errIncomplete{what: "its responses array"}
	}
	sent := make(map[string]bool, len(items))
	for _, it := range items {
		sent[it.ID] = true
	}
	out := make(map[string]batchAnswer, len(items))
	for _, a := range *resp.Responses {
		if _, dup := out[a.ID]; dup || !sent[a.ID] {
			return nil, &errIncomplete{what: fmt.Sprintf("a single response for each request (got one for %q)", a.ID)}
		}
		out[a.ID] = a
	}
	return out, nil
}

// answerError returns the *Error for a failed inner answer, read as classify reads a
// single call's: status, Graph's error code and message, request-id and Retry-After.
func answerError(op string, a batchAnswer) *Error {
	e := &Error{Op: op, StatusCode: a.Status}
	var body struct {
		Error *struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError *struct {
				RequestID string `json:"request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	if json.Unmarshal(a.Body, &body) == nil && body.Error != nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		if body.Error.InnerError != nil {
			e.RequestID = body.Error.InnerError.RequestID
		}
	}
	if v := answerHeader(a, "request-id"); v != "" {
		e.RequestID = v
	}
	e.RetryAfterDuration = parseRetryAfter(answerHeader(a, "Retry-After"), time.Now())
	return e
}

func answerHeader(a batchAnswer, name string) string {
	for k, v := range a.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// decodeAnswer decodes a 200 inner answer's body into v; any other 2xx, or a body that is
// not the JSON expected, is an incomplete answer.
func decodeAnswer(a batchAnswer, v any) error {
	if a.Status != http.StatusOK {
		return &errIncomplete{what: fmt.Sprintf("the status 200 (got %d)", a.Status)}
	}
	if len(bytes.TrimSpace(a.Body)) == 0 {
		return &errIncomplete{what: "a body"}
	}
	if err := json.Unmarshal(a.Body, v); err != nil {
		return &errIncomplete{what: "a body it can decode: " + err.Error()}
	}
	return nil
}

// batchWait is how long to wait before re-sending the inner requests that answered e
// (Retry-After, or the retry handler's backoff when there is none).
func batchWait(e *Error, attempt int) time.Duration {
	if e.RetryAfterDuration > 0 {
		return e.RetryAfterDuration
	}
	return backoffBase<<(attempt-1) + time.Duration(rand.Int64N(int64(time.Second)))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
