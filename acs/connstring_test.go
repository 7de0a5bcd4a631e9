package acs

import (
	"errors"
	"strings"
	"testing"
)

func TestParseConnectionString(t *testing.T) {
	tests := []struct {
		name         string
		cs           string
		wantEndpoint string
	}{
		{"documented form", "endpoint=https://contoso.communication.azure.com/;accesskey=" + testKey, "https://contoso.communication.azure.com"},
		{"keys in any case", "Endpoint=https://contoso.communication.azure.com/;AccessKey=" + testKey, "https://contoso.communication.azure.com"},
		{"blanks and stray semicolons", "  ;endpoint = https://contoso.communication.azure.com ; ;accesskey= " + testKey + " ;;", "https://contoso.communication.azure.com"},
		{"key first", "accesskey=" + testKey + ";endpoint=https://contoso.communication.azure.com", "https://contoso.communication.azure.com"},
		{"unknown keys ignored", "endpoint=https://contoso.communication.azure.com/;accesskey=" + testKey + ";region=westeurope", "https://contoso.communication.azure.com"},
		{"port kept", "endpoint=https://contoso.communication.azure.com:8443/;accesskey=" + testKey, "https://contoso.communication.azure.com:8443"},
		{"http on 127.0.0.1", "endpoint=http://127.0.0.1:9000/;accesskey=" + testKey, "http://127.0.0.1:9000"},
		{"http anywhere in 127/8", "endpoint=http://127.8.9.10:9000;accesskey=" + testKey, "http://127.8.9.10:9000"},
		{"http on ::1", "endpoint=http://[::1]:9000/;accesskey=" + testKey, "http://[::1]:9000"},
		{"http on localhost", "endpoint=http://LocalHost:9000/;accesskey=" + testKey, "http://LocalHost:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConnectionString(tt.cs)
			if err != nil {
				t.Fatalf("parseConnectionString() error = %v", err)
			}
			if got.endpoint.String() != tt.wantEndpoint {
				t.Errorf("endpoint = %q, want %q", got.endpoint, tt.wantEndpoint)
			}
			if string(got.key) != "secret-key-for-tests" {
				t.Errorf("key = %q, want the decoded access key", got.key)
			}
		})
	}
}

func TestParseConnectionStringRejects(t *testing.T) {
	const secretish = "c3VwZXItc2VjcmV0LWtleS12YWx1ZQ==" // must never be echoed
	tests := []struct {
		name string
		cs   string
		want string // part of the error
	}{
		{"empty", "", "endpoint is missing"},
		{"no endpoint", "accesskey=" + secretish, "endpoint is missing"},
		{"no key", "endpoint=https://contoso.communication.azure.com/", "accesskey is missing"},
		{"empty key", "endpoint=https://contoso.communication.azure.com/;accesskey=", "accesskey is missing"},
		{"key not base64", "endpoint=https://contoso.communication.azure.com/;accesskey=" + secretish + "!!", "accesskey is not valid base64"},
		{"segment without =", "endpoint=https://contoso.communication.azure.com/;" + secretish[:20], "segment 2 is not name=value"},
		{"endpoint twice", "endpoint=https://a.example;endpoint=https://b.example;accesskey=" + secretish, "endpoint is given twice"},
		{"key twice", "endpoint=https://a.example;accesskey=" + secretish + ";accesskey=" + secretish, "accesskey is given twice"},
		{"http on a public host", "endpoint=http://contoso.communication.azure.com/;accesskey=" + secretish, "plain http is allowed only for a loopback host"},
		{"http on a private address", "endpoint=http://10.0.0.5/;accesskey=" + secretish, "plain http is allowed only for a loopback host"},
		{"other scheme", "endpoint=ftp://contoso/;accesskey=" + secretish, "scheme must be https"},
		{"relative", "endpoint=contoso.communication.azure.com;accesskey=" + secretish, "is not an absolute URL"},
		{"query in endpoint", "endpoint=https://contoso.communication.azure.com/?x=1;accesskey=" + secretish, "must not carry user info, a query or a fragment"},
		{"user info in endpoint", "endpoint=https://u:p@contoso.communication.azure.com/;accesskey=" + secretish, "must not carry user info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConnectionString(tt.cs)
			if err == nil {
				t.Fatal("parseConnectionString() error = nil, want one")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("error %T is not a *ValidationError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secretish[:12]) {
				t.Errorf("error %q repeats the access key", err)
			}
			if IsTemporary(err) || IsSystemic(err) || IsNotFound(err) {
				t.Errorf("error %q classifies as retryable/systemic/not-found; want permanent", err)
			}
		})
	}
}

func TestNewClientChecksEndpointAndCredential(t *testing.T) {
	cred := staticToken("t")
	if _, err := NewClient("http://contoso.communication.azure.com", cred, nil); err == nil ||
		!strings.Contains(err.Error(), "loopback") {
		t.Errorf("NewClient(http public) error = %v, want a refusal naming loopback", err)
	}
	if _, err := NewClient("https://contoso.communication.azure.com", nil, nil); err == nil {
		t.Error("NewClient(nil credential) error = nil, want one")
	}
	if _, err := NewClient(" https://contoso.communication.azure.com/ ", cred, nil); err != nil {
		t.Errorf("NewClient(https with blanks and slash) error = %v", err)
	}
	if _, err := NewClient("http://127.0.0.1:1", cred, &Options{ResourceAccountWireName: "ra"}); err == nil {
		t.Error("NewClient(bad ResourceAccountWireName) error = nil, want one")
	}
}
