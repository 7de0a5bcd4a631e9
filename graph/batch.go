package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"
)

// JSON batching (concepts/json-batching.md): POST /v1.0/$batch with
// {"requests":[{id, method, url, headers, body}]} — at most 20 requests, ids unique, urls
// relative to the version root — answers 200 {"responses":[{id, status, headers, body}]}
// in any order, or 400 when the batch itself is malformed. Each request is throttled on its
// own ("Requests in a batch are evaluated individually against the applicable throttling
// limits"), so one inner request may answer 429 with its Retry-After while the others
// succeed.
//
// The batch is the worker's only Graph call per directory read, so it is sent with the
// least machinery that keeps the client's guarantees: the SDK's token provider (the same
// credential, scope and allowed hosts) and the SDK's HTTP client — its middleware, the
// retry handler of retry.go for the envelope (429/503/504, Retry-After), the call counter —
// but without kiota's request information, URI template, response handler and parse nodes,
// and without msgraph-sdk-go-core's batch helpers, which decode every inner body through
// kiota's parse nodes (the CPU that wire.go avoids). An envelope that is not a 2xx is read
// into an *Error as classify reads the SDK's (status, Graph's code and message, request-id,
// Retry-After). Not done on this path: kiota's re-authentication on a 401 carrying a claims
// challenge (continuous access evaluation, which this client does not enable).

// batchItem is one request of a batch.
type batchItem struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

// batchAnswer is one response of a batch. Its body is decoded in the same pass as the
// envelope, into the union of the shapes the batches of this package can answer (a user, a
// page of directory objects, Graph's error), so no inner body is scanned twice.
type batchAnswer struct {
	ID      string        `json:"id"`
	Status  int           `json:"status"`
	Headers answerHeaders `json:"headers"`
	Body    answerBody    `json:"body"`
}

// answerHeaders are the inner answer's headers the client reads (encoding/json matches
// the names without regard to case, as HTTP does).
type answerHeaders struct {
	RetryAfter string `json:"Retry-After"`
	RequestID  string `json:"request-id"`
}

// answerBody is an inner answer's body: whichever of the shapes it has is filled.
type answerBody struct {
	wireUser
	wireObjects
	Error *struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			RequestID string `json:"request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// sendBatch sends items as one $batch (op names it in errors) and returns the answers by id (ids compared as
// sent: the client chooses them). An answer for an id not sent, or twice for one, is an
// incomplete answer; a missing one is left for the caller to notice.
func (c *Client) sendBatch(ctx context.Context, op string, items []batchItem) (map[string]batchAnswer, error) {
	body, err := json.Marshal(map[string]any{"requests": items})
	if err != nil {
		return nil, err
	}
	raw, err := c.postBatch(ctx, op, body)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Responses *[]batchAnswer `json:"responses"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
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

// maxBatchAnswer bounds the envelope read: 20 answers of at most a 999-item page each.
const maxBatchAnswer = 32 << 20

// postBatch posts body to $batch with a bearer token and returns a 2xx answer's body.
func (c *Client) postBatch(ctx context.Context, op string, body []byte) ([]byte, error) {
	tok, err := c.tokens.GetAuthorizationToken(ctx, c.batchURL, nil)
	if err != nil {
		return nil, err
	}
	if tok == "" {
		return nil, &Error{Op: op, credential: true, Message: "no token for " + c.batchURL.Host}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.batchURL.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Body = seekableBody{bytes.NewReader(body)} // so the retry handler can send it again
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBatchAnswer))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a := batchAnswer{Status: resp.StatusCode, Headers: answerHeaders{
			RequestID: resp.Header.Get("request-id"), RetryAfter: resp.Header.Get("Retry-After")}}
		_ = json.Unmarshal(raw, &a.Body) // without Graph's error body the status still classifies
		return nil, answerError(op, a)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty answer")
	}
	return raw, nil
}

// seekableBody is a request body the retry handler can rewind (rewindable in retry.go):
// net/http wraps a *bytes.Reader body in a closer that hides its Seek.
type seekableBody struct{ *bytes.Reader }

func (seekableBody) Close() error { return nil }

// answerError returns the *Error for a failed inner answer, read as classify reads a
// single call's: status, Graph's error code and message, request-id and Retry-After.
func answerError(op string, a batchAnswer) *Error {
	e := &Error{Op: op, StatusCode: a.Status}
	if b := a.Body.Error; b != nil {
		e.Code, e.Message = b.Code, b.Message
		if b.InnerError != nil {
			e.RequestID = b.InnerError.RequestID
		}
	}
	if v := a.Headers.RequestID; v != "" {
		e.RequestID = v
	}
	e.RetryAfterDuration = parseRetryAfter(a.Headers.RetryAfter, time.Now())
	return e
}

// succeeded checks that a successful inner answer is a 200: any other 2xx is an
// incomplete answer (the reads batched here answer 200 or fail).
func succeeded(a batchAnswer) error {
	if a.Status != http.StatusOK {
		return &errIncomplete{what: fmt.Sprintf("the status 200 (got %d)", a.Status)}
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
