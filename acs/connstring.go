package acs

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// connectionString is a parsed "endpoint=...;accesskey=..." string.
type connectionString struct {
	endpoint *url.URL
	key      []byte // decoded access key
}

// parseConnectionString parses an ACS connection string. Keys are case-insensitive, blanks
// around segments and empty segments are ignored, unknown keys are skipped. Errors describe
// what is wrong without repeating any value that could be the key.
func parseConnectionString(cs string) (connectionString, error) {
	var endpoint, key string
	var haveEndpoint, haveKey bool
	for i, seg := range strings.Split(cs, ";") {
		seg = strings.TrimSpace(seg)
		if seg == "" {
			continue
		}
		name, value, ok := strings.Cut(seg, "=")
		if !ok {
			return connectionString{}, csError("segment %d is not name=value", i+1)
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		switch name {
		case "endpoint":
			if haveEndpoint {
				return connectionString{}, csError("endpoint is given twice")
			}
			endpoint, haveEndpoint = value, true
		case "accesskey":
			if haveKey {
				return connectionString{}, csError("accesskey is given twice")
			}
			key, haveKey = value, true
		}
	}
	if endpoint == "" {
		return connectionString{}, csError("endpoint is missing")
	}
	if key == "" {
		return connectionString{}, csError("accesskey is missing")
	}
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return connectionString{}, err
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) == 0 {
		return connectionString{}, csError("accesskey is not valid base64 (copy it again from the resource's Keys blade)")
	}
	return connectionString{endpoint: u, key: raw}, nil
}

func csError(format string, args ...any) error {
	return &ValidationError{Field: "connection string", Reason: fmt.Sprintf(format, args...)}
}

// parseEndpoint checks an ACS endpoint: an absolute https URL, or http for a loopback host
// (a local emulator). A trailing slash is dropped. Errors name only the scheme and host.
func parseEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil, &ValidationError{Field: "endpoint", Reason: "is not an absolute URL such as https://<resource>.communication.azure.com"}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, &ValidationError{Field: "endpoint", Reason: "must not carry user info, a query or a fragment"}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, &ValidationError{Field: "endpoint", Value: "http://" + u.Host,
			Reason: "plain http is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https"}
	default:
		return nil, &ValidationError{Field: "endpoint", Value: u.Scheme + "://" + u.Host, Reason: "scheme must be https"}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// isLoopback reports whether host (without port or brackets) is a loopback address or
// localhost.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
