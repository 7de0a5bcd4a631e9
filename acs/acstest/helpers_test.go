package acstest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	alice  = "0b9f1b0e-3c2d-4a5e-8f6a-1d2c3b4a5e6f"
	appA   = "11111111-2222-3333-4444-555555555555"
)

func assignmentURL(srv *Server, objectID, version string) string {
	u := srv.URL() + "/access/teamsExtension/tenants/" + tenant + "/assignments/" + objectID
	if version != "" {
		u += "?api-version=" + version
	}
	return u
}

// newSigned builds a request signed the way the ACS scheme says, independently of the acs
// package (which this package must not import).
func newSigned(t *testing.T, key, method, url, body string, date time.Time) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	hash := base64.StdEncoding.EncodeToString(sum[:])
	d := date.UTC().Format(http.TimeFormat)
	raw, _ := base64.StdEncoding.DecodeString(key)
	m := hmac.New(sha256.New, raw)
	m.Write([]byte(method + "\n" + r.URL.RequestURI() + "\n" + d + ";" + r.URL.Host + ";" + hash))
	r.Header.Set("x-ms-date", d)
	r.Header.Set("x-ms-content-sha256", hash)
	r.Header.Set("Authorization", "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	return r
}

// answer is a response read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, r *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// errorOf decodes the service's error shape, failing the test when the body is not it.
func errorOf(t *testing.T, a answer) (code, message string) {
	t.Helper()
	var e errorBody
	if err := json.NewDecoder(bytes.NewReader(a.body)).Decode(&e); err != nil || e.Error.Code == "" {
		t.Fatalf("body %q is not {\"error\":{\"code\",\"message\"}}", a.body)
	}
	return e.Error.Code, e.Error.Message
}

func ioNop(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

// faultsQueued returns the scripted faults not yet used.
func (s *Server) faultsQueued() []fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fault(nil), s.faults.queue...)
}
