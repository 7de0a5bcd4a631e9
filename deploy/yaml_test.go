package deploy

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// parseYAML reads the strict YAML subset the manifests are written in: block mappings and
// sequences, plain and quoted scalars, `[a, b]` flow sequences of scalars, `{}`, comments and
// `---` separators. Anything outside it (anchors, tags, block scalars, multi-line scalars,
// tabs, duplicate keys) is an error rather than a guess, and so are plain scalars that YAML 1.1
// readers resolve surprisingly (yes/no/on/off, octal, sexagesimal, dates): quote those. Types
// follow YAML 1.1 as PyYAML and Kubernetes read them: null, bool, int, float, string.
// There is no YAML module in go.mod; TestParseYAMLAgreesWithPyYAML checks this reader against
// a real one wherever one is installed.
func parseYAML(src string) ([]any, error) {
	docs := []any{}
	segs := splitDocuments(src)
	for i, seg := range segs {
		lines, err := scanLines(seg.text, seg.firstLine)
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 {
			if (i == 0 && seg.leading) || len(segs) == 1 {
				continue // "---" first opens the first document; a stream of comments has none
			}
			docs = append(docs, nil)
			continue
		}
		p := &yamlParser{lines: lines}
		if lines[0].indent != 0 {
			return nil, fmt.Errorf("line %d: document must start at column 0", lines[0].n)
		}
		v, err := p.block(0)
		if err != nil {
			return nil, err
		}
		if p.i < len(p.lines) {
			return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].n)
		}
		docs = append(docs, v)
	}
	return docs, nil
}

type segment struct {
	text      string
	firstLine int
	leading   bool // the stream starts with "---" before any content
}

func splitDocuments(src string) []segment {
	var segs []segment
	cur, start, sawContent := []string{}, 1, false
	for n, line := range strings.Split(src, "\n") {
		if strings.TrimRight(line, " \r") == "---" {
			segs = append(segs, segment{strings.Join(cur, "\n"), start, len(segs) == 0 && !sawContent})
			cur, start = nil, n+2
			continue
		}
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			sawContent = true
		}
		cur = append(cur, line)
	}
	return append(segs, segment{strings.Join(cur, "\n"), start, false})
}

type yamlLine struct {
	n, indent int
	text      string
}

func scanLines(src string, first int) ([]yamlLine, error) {
	var out []yamlLine
	for k, raw := range strings.Split(src, "\n") {
		n := first + k
		raw = strings.TrimRight(raw, "\r")
		body := strings.TrimLeft(raw, " ")
		if strings.HasPrefix(body, "\t") {
			return nil, fmt.Errorf("line %d: tab in indentation", n)
		}
		text, err := stripComment(body)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if text == "" {
			continue
		}
		if text == "..." || strings.HasPrefix(text, "%") {
			return nil, fmt.Errorf("line %d: directives and document end markers are outside the subset", n)
		}
		out = append(out, yamlLine{n: n, indent: len(raw) - len(body), text: text})
	}
	return out, nil
}

// stripComment removes a trailing comment outside quotes and trailing spaces.
func stripComment(s string) (string, error) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case (c == '"' || c == '\'') && (i == 0 || strings.ContainsRune(" [,:-", rune(s[i-1]))):
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return strings.TrimRight(s[:i], " "), nil
		}
	}
	if quote != 0 {
		return "", errors.New("unterminated quoted scalar (multi-line scalars are outside the subset)")
	}
	return strings.TrimRight(s, " "), nil
}

type yamlParser struct {
	lines []yamlLine
	i     int
}

func isSeqItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

func (p *yamlParser) block(indent int) (any, error) {
	if isSeqItem(p.lines[p.i].text) {
		return p.sequence(indent)
	}
	return p.mapping(indent)
}

func (p *yamlParser) sequence(indent int) ([]any, error) {
	out := []any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		var v any
		var err error
		switch {
		case rest == "":
			p.i++
			if p.i < len(p.lines) && p.lines[p.i].indent > indent {
				v, err = p.block(p.lines[p.i].indent)
			}
		case isSeqItem(rest) || hasKey(rest):
			// "- key: v" or "- - x": the item is a block starting at the text's column.
			p.lines[p.i] = yamlLine{n: l.n, indent: indent + len(l.text) - len(rest), text: rest}
			v, err = p.block(p.lines[p.i].indent)
		default:
			p.i++
			v, err = parseValue(rest, l.n)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if p.i < len(p.lines) && p.lines[p.i].indent > indent {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].n)
	}
	return out, nil
}

func (p *yamlParser) mapping(indent int) (map[string]any, error) {
	m := map[string]any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent {
		l := p.lines[p.i]
		if isSeqItem(l.text) {
			return nil, fmt.Errorf("line %d: sequence item where a mapping key was expected", l.n)
		}
		key, rest, err := splitKey(l.text, l.n)
		if err != nil {
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", l.n, key)
		}
		p.i++
		var v any
		switch {
		case rest != "":
			v, err = parseValue(rest, l.n)
		case p.i < len(p.lines) && p.lines[p.i].indent > indent:
			v, err = p.block(p.lines[p.i].indent)
		case p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text):
			v, err = p.sequence(indent)
		}
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
	if p.i < len(p.lines) && p.lines[p.i].indent > indent {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].n)
	}
	return m, nil
}

// hasKey reports whether text starts a mapping entry ("key:" or "key: value").
func hasKey(text string) bool {
	_, _, err := splitKey(text, 0)
	return err == nil
}

func splitKey(text string, n int) (key, rest string, err error) {
	if text[0] == '"' || text[0] == '\'' {
		end := closingQuote(text)
		if end < 0 || end+1 >= len(text) || text[end+1] != ':' {
			return "", "", fmt.Errorf("line %d: expected a quoted key followed by ':'", n)
		}
		k, err := parseValue(text[:end+1], n)
		if err != nil {
			return "", "", err
		}
		return k.(string), strings.TrimLeft(text[end+2:], " "), nil
	}
	i := strings.Index(text, ": ")
	if i < 0 && strings.HasSuffix(text, ":") {
		i = len(text) - 1
	}
	if i <= 0 {
		return "", "", fmt.Errorf("line %d: expected \"key: value\", got %q", n, text)
	}
	key = text[:i]
	if strings.ContainsAny(key[:1], "[{&*!|>'\"%@`?") || key == "<<" {
		return "", "", fmt.Errorf("line %d: key %q is outside the subset", n, key)
	}
	return key, strings.TrimLeft(text[i+1:], " "), nil
}

// closingQuote returns the index of the quote closing the scalar that starts text, or -1.
func closingQuote(text string) int {
	q := text[0]
	for i := 1; i < len(text); i++ {
		switch {
		case q == '"' && text[i] == '\\':
			i++
		case q == '\'' && text[i] == '\'' && i+1 < len(text) && text[i+1] == '\'':
			i++
		case text[i] == q:
			return i
		}
	}
	return -1
}

func parseValue(s string, n int) (any, error) {
	switch s[0] {
	case '"', '\'':
		if closingQuote(s) != len(s)-1 {
			return nil, fmt.Errorf("line %d: text after the quoted scalar %s", n, s)
		}
		return unquote(s, n)
	case '[':
		return flowSequence(s, n)
	case '{':
		if s == "{}" {
			return map[string]any{}, nil
		}
		return nil, fmt.Errorf("line %d: flow mappings are outside the subset", n)
	case '&', '*', '!', '|', '>', '%', '@', '`':
		return nil, fmt.Errorf("line %d: %q is outside the subset (anchors, aliases, tags, block scalars)", n, s)
	}
	if strings.Contains(s, ": ") || strings.HasSuffix(s, ":") {
		return nil, fmt.Errorf("line %d: plain scalar %q contains ': '; quote it", n, s)
	}
	return resolvePlain(s, n)
}

func unquote(s string, n int) (string, error) {
	body := s[1 : len(s)-1]
	if s[0] == '\'' {
		return strings.ReplaceAll(body, "''", "'"), nil
	}
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			b.WriteByte(body[i])
			continue
		}
		i++
		if i == len(body) {
			return "", fmt.Errorf("line %d: dangling escape", n)
		}
		r, ok := map[byte]string{'\\': `\`, '"': `"`, '/': "/", 'n': "\n", 't': "\t", 'r': "\r"}[body[i]]
		if !ok {
			return "", fmt.Errorf("line %d: escape \\%c is outside the subset", n, body[i])
		}
		b.WriteString(r)
	}
	return b.String(), nil
}

func flowSequence(s string, n int) ([]any, error) {
	if !strings.HasSuffix(s, "]") {
		return nil, fmt.Errorf("line %d: flow sequence must end the line: %s", n, s)
	}
	out := []any{}
	inner := strings.TrimSpace(s[1 : len(s)-1])
	for inner != "" {
		var item string
		if inner[0] == '"' || inner[0] == '\'' {
			end := closingQuote(inner)
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated quote in %s", n, s)
			}
			item, inner = inner[:end+1], strings.TrimSpace(inner[end+1:])
		} else {
			end := strings.IndexByte(inner, ',')
			if end < 0 {
				end = len(inner)
			}
			item, inner = strings.TrimSpace(inner[:end]), inner[end:]
		}
		if strings.ContainsAny(item[:1], "[{") {
			return nil, fmt.Errorf("line %d: nested flow collections are outside the subset", n)
		}
		v, err := parseValue(item, n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if inner != "" {
			if inner[0] != ',' {
				return nil, fmt.Errorf("line %d: expected ',' in %s", n, s)
			}
			inner = strings.TrimSpace(inner[1:])
		}
	}
	return out, nil
}

var (
	yamlInt       = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)
	yamlFloat     = regexp.MustCompile(`^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`)
	yamlAmbiguous = []*regexp.Regexp{
		regexp.MustCompile(`^(yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N)$`), // 1.1 booleans
		regexp.MustCompile(`^[-+]?0[0-9_]+$`),                                       // octal
		regexp.MustCompile(`^[-+]?0[xXoObB]`),                                       // hex, octal, binary
		regexp.MustCompile(`^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$`),        // sexagesimal
		regexp.MustCompile(`^[-+]?[0-9][0-9_]*\.?[0-9_]*$`),                         // underscores
		regexp.MustCompile(`^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}`),                       // timestamps
		regexp.MustCompile(`^[-+]?\.(inf|Inf|INF|nan|NaN|NAN)$`),                    // infinities
		regexp.MustCompile(`^(=|<<)$`),                                              // value, merge
	}
)

func resolvePlain(s string, n int) (any, error) {
	switch s {
	case "~", "null", "Null", "NULL":
		return nil, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	}
	if yamlInt.MatchString(s) {
		return strconv.Atoi(s)
	}
	if yamlFloat.MatchString(s) {
		return strconv.ParseFloat(s, 64)
	}
	for _, re := range yamlAmbiguous {
		if re.MatchString(s) {
			return nil, fmt.Errorf("line %d: plain %q reads differently across YAML versions; quote it", n, s)
		}
	}
	return s, nil
}
