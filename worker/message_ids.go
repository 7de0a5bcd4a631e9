package worker

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// isObjectID reports whether s is a GUID in the 8-4-4-4-12 hex form Entra uses for object
// ids (either letter case; no braces).
// IsObjectID reports whether s is an Entra ID object id (a GUID in its 8-4-4-4-12 form).
func IsObjectID(s string) bool { return isObjectID(s) }

func isObjectID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// LooksLikeUPN reports whether s is acceptable as a userPrincipalName anywhere a principal
// is named (queue commands, the CLI): see looksLikeUPN.
func LooksLikeUPN(s string) bool { return looksLikeUPN(s) }

// maxUPNLength bounds a userPrincipalName (Entra allows 113 characters; leave headroom).
const maxUPNLength = 256

// looksLikeUPN reports whether s has the local@domain shape of a userPrincipalName: exactly
// one '@', a non-empty local part, a dotted domain, and none of the characters that would
// change a Graph request path or query, nor any character that is invisible or reorders
// text (controls, format characters such as the bidirectional overrides U+202A–U+202E and
// isolates U+2066–U+2069, spaces), so that what an audit record or a terminal shows is the
// principal that was asked for. Invalid UTF-8 is refused too. Guest UPNs
// (alice_example.com#EXT#@contoso.com) pass.
func looksLikeUPN(s string) bool {
	if len(s) == 0 || len(s) > maxUPNLength || strings.Count(s, "@") != 1 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !printableUPNRune(r) || strings.ContainsRune(`/\?%"<>()[],;:`, r) {
			return false
		}
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || !strings.Contains(domain, ".") {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" {
			return false
		}
	}
	return true
}

// printableUPNRune reports whether r may appear in a UPN: a graphic character that is not
// a space, a control (Cc), a format character (Cf: bidirectional controls, zero-width
// joiners, soft hyphen, BOM), a private-use or unassigned code point, or a separator.
// PrintableRune reports whether r may appear in a userPrincipalName or a validation token
// the relay echoes: printable, no control or format character.
func PrintableRune(r rune) bool { return printableUPNRune(r) }

func printableUPNRune(r rune) bool {
	switch {
	case r <= ' ', r == 0x7f:
		return false
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Zs, unicode.Zl, unicode.Zp):
		return false
	}
	return unicode.IsGraphic(r)
}

// resourceKind is the kind of directory object a notification's resource path names.
type resourceKind int

const (
	kindUnknown resourceKind = iota // no path, or a path we cannot read
	kindUser
	kindGroup
	kindOther // a readable path naming something else (devices, messages, ...)
)

// parseResource reads the collection and id from a Graph resource path in any of the forms
// Graph and Event Grid use: "Users/<id>", "users('<id>')", "/users/<id>", "Groups/<id>",
// optionally behind a "v1.0/" or "beta/" segment. The id is returned as sent.
func parseResource(path string) (resourceKind, string) {
	p := strings.TrimPrefix(strings.TrimSpace(path), "/")
	for _, version := range []string{"v1.0/", "beta/"} {
		if len(p) >= len(version) && strings.EqualFold(p[:len(version)], version) {
			p = p[len(version):]
		}
	}
	end := strings.IndexAny(p, "/(")
	if end <= 0 || end == len(p)-1 {
		return kindUnknown, ""
	}
	var id string
	if p[end] == '(' {
		id, _, _ = strings.Cut(p[end+1:], ")")
		id = strings.Trim(id, "'")
	} else {
		id, _, _ = strings.Cut(p[end+1:], "/")
	}
	switch collection := p[:end]; {
	case strings.EqualFold(collection, "users"):
		return kindUser, id
	case strings.EqualFold(collection, "groups"):
		return kindGroup, id
	default:
		return kindOther, id
	}
}

// odataKind reads the kind from a resourceData "@odata.type" ("#Microsoft.Graph.User").
func odataKind(t string) resourceKind {
	switch strings.ToLower(strings.TrimPrefix(t, "#")) {
	case "":
		return kindUnknown
	case "microsoft.graph.user":
		return kindUser
	case "microsoft.graph.group":
		return kindGroup
	}
	return kindOther
}
