package graphtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
)

// maxBatchRequests is the most requests one JSON batch may hold (json-batching, "Batch
// size limitations").
const maxBatchRequests = 20

// batchRequest is one request of a JSON batch as json-batching documents it: id, method
// and url are required, headers must carry Content-Type when a body is sent, dependsOn
// lists ids that must run first.
type batchRequest struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	Body      json.RawMessage   `json:"body"`
	DependsOn []string          `json:"dependsOn"`
}

// batchResponse is one response of a JSON batch: id, status, headers, body.
type batchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// batch serves POST /v1.0/$batch (concepts/json-batching.md). A batch that is not JSON,
// has no requests or more than 20, a request without id, method or url, two ids equal
// regardless of case, a url that is not relative, a body without a Content-Type header, or
// a dependsOn naming an id the batch lacks (or a cycle) fails whole with 400. Otherwise the
// answer is 200 and each request is served through the emulator's own routes — token check,
// FailNext, FailOn of its operation, the random fault rate, the request log and counters —
// as if sent alone but without a second Latency, so one request can fail (a 429 with its
// Retry-After) while the others succeed. A request whose dependsOn names a failed request is
// not run and answers 424, as the page says. The responses come back shuffled by the
// emulator's seeded generator, since the page says they may arrive in any order.
//
// Not settled by a public source, and the emulator's choice: the error codes and messages
// of the whole-batch 400s; whether a body without Content-Type fails the whole batch or
// only its request (the page only says it must be there); that a nested $batch is refused;
// that requests without dependsOn run one after another in the order given (Graph may run
// them in parallel); that the envelope itself meets FailNext, FailOn(OpBatch) and the
// random fault rate like any request.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	reqs, e := parseBatch(r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	out := make([]batchResponse, 0, len(reqs))
	status := map[string]int{} // by lower-case id, once served
	for len(out) < len(reqs) {
		progressed := false
		for _, br := range reqs {
			id := strings.ToLower(br.ID)
			if _, done := status[id]; done || !depsDone(br, status) {
				continue
			}
			resp := s.serveInner(r, br, status)
			status[id] = resp.Status
			out = append(out, resp)
			progressed = true
		}
		if !progressed {
			s.writeError(w, r, badRequest("BadRequest", "The dependsOn of the batch's requests form a cycle."))
			return
		}
	}
	s.mu.Lock()
	s.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"responses": out})
}

// parseBatch reads and checks the batch body.
func parseBatch(r *http.Request) ([]batchRequest, *apiError) {
	var b struct {
		Requests []batchRequest `json:"requests"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&b); err != nil {
		return nil, badRequest("BadRequest", "Invalid batch payload format: "+err.Error())
	}
	switch {
	case len(b.Requests) == 0:
		return nil, badRequest("BadRequest", "The batch must hold at least one request.")
	case len(b.Requests) > maxBatchRequests:
		return nil, badRequest("BadRequest", fmt.Sprintf("The batch holds %d requests; at most %d are allowed.", len(b.Requests), maxBatchRequests))
	}
	ids := map[string]bool{}
	for _, br := range b.Requests {
		id := strings.ToLower(br.ID)
		switch {
		case br.ID == "" || br.Method == "" || br.URL == "":
			return nil, badRequest("BadRequest", "Each request of a batch needs an id, a method and a url.")
		case ids[id]:
			return nil, badRequest("BadRequest", "Request id '"+br.ID+"' appears more than once in the batch.")
		case strings.Contains(br.URL, "://"):
			return nil, badRequest("BadRequest", "The url of request '"+br.ID+"' must be relative, e.g. /users.")
		case strings.HasPrefix(strings.TrimPrefix(br.URL, "/"), "$batch"):
			return nil, badRequest("BadRequest", "A batch cannot hold a batch.")
		case len(br.Body) > 0 && header(br.Headers, "Content-Type") == "":
			return nil, badRequest("BadRequest", "Request '"+br.ID+"' has a body but no Content-Type header.")
		}
		ids[id] = true
	}
	for _, br := range b.Requests {
		for _, d := range br.DependsOn {
			if !ids[strings.ToLower(d)] {
				return nil, badRequest("BadRequest", "Request '"+br.ID+"' depends on '"+d+"', which the batch does not hold.")
			}
		}
	}
	return b.Requests, nil
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func depsDone(br batchRequest, status map[string]int) bool {
	for _, d := range br.DependsOn {
		if _, ok := status[strings.ToLower(d)]; !ok {
			return false
		}
	}
	return true
}

// serveInner serves one request of the batch through the emulator's handler.
func (s *Server) serveInner(outer *http.Request, br batchRequest, status map[string]int) batchResponse {
	for _, d := range br.DependsOn {
		if st := status[strings.ToLower(d)]; st < 200 || st > 299 {
			return s.innerError(outer, br.ID, &apiError{status: http.StatusFailedDependency, code: "FailedDependency",
				msg: "Request '" + d + "', which this request depends on, failed."})
		}
	}
	var body io.Reader = http.NoBody
	if len(br.Body) > 0 {
		raw := []byte(br.Body)
		var s string
		if json.Unmarshal(raw, &s) == nil { // a base64 body (an image, say)
			if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
				raw = dec
			} else if dec, err := base64.URLEncoding.DecodeString(s); err == nil {
				raw = dec
			}
		}
		body = bytes.NewReader(raw)
	}
	target := "/v1.0/" + strings.TrimPrefix(br.URL, "/")
	in, err := http.NewRequestWithContext(outer.Context(), strings.ToUpper(br.Method), target, body)
	if err != nil {
		return s.innerError(outer, br.ID, badRequest("BadRequest", "Invalid request url: "+err.Error()))
	}
	in.Host, in.TLS, in.RemoteAddr = outer.Host, outer.TLS, outer.RemoteAddr
	in.Header.Set("Authorization", outer.Header.Get("Authorization"))
	for k, v := range br.Headers {
		in.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.serve(rec, in, 0)
	return innerResponse(br.ID, rec)
}

// innerError answers one request of the batch with e, without serving it.
func (s *Server) innerError(outer *http.Request, id string, e *apiError) batchResponse {
	rec := httptest.NewRecorder()
	rec.Header().Set("request-id", s.nextRequestID())
	s.writeError(rec, outer, e)
	return innerResponse(id, rec)
}

func innerResponse(id string, rec *httptest.ResponseRecorder) batchResponse {
	resp := batchResponse{ID: id, Status: rec.Code, Headers: map[string]string{}}
	for k, v := range rec.Header() {
		if len(v) > 0 {
			resp.Headers[k] = v[0]
		}
	}
	if b := bytes.TrimSpace(rec.Body.Bytes()); len(b) > 0 {
		if json.Valid(b) {
			resp.Body = b
		} else {
			resp.Body, _ = json.Marshal(base64.StdEncoding.EncodeToString(b))
		}
	}
	return resp
}
