package deploy

import (
	"context"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []any
	}{
		{"nested mappings and typed scalars", "a:\n  b: 1\n  c: \"1\"\n  d: true\n  e: 1.5\n  f: 128Mi\n  g:\n  h: ~\n",
			[]any{map[string]any{"a": map[string]any{"b": 1, "c": "1", "d": true, "e": 1.5, "f": "128Mi", "g": nil, "h": nil}}}},
		{"sequence at the key's indent", "k:\n- a\n- b: 2\n  c: 3\n",
			[]any{map[string]any{"k": []any{"a", map[string]any{"b": 2, "c": 3}}}}},
		{"indented sequence of mappings", "k:\n  - name: x\n    v: \"y\"\n  - name: z\n",
			[]any{map[string]any{"k": []any{map[string]any{"name": "x", "v": "y"}, map[string]any{"name": "z"}}}}},
		{"flow sequences and empty collections", "a: [\"run\", x, 2]\nb: []\nc: {}\n",
			[]any{map[string]any{"a": []any{"run", "x", 2}, "b": []any{}, "c": map[string]any{}}}},
		{"comments, quotes with hashes and colons", "# top\na: \"x # y: z\" # trailing\nb: 'it''s'\nc: http://h:1/p\n",
			[]any{map[string]any{"a": "x # y: z", "b": "it's", "c": "http://h:1/p"}}},
		{"escapes in double quotes", `a: "q\"\\n"` + "\n",
			[]any{map[string]any{"a": `q"\n`}}},
		{"documents", "---\na: 1\n---\n# none\n---\nb: 2\n---\n",
			[]any{map[string]any{"a": 1}, nil, map[string]any{"b": 2}, nil}},
		{"only comments", "# nothing\n", []any{}},
		{"quoted keys", "\"a.b/c\": x\n", []any{map[string]any{"a.b/c": "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseYAML(tt.src)
			if err != nil {
				t.Fatalf("parseYAML: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseYAML(%q)\n got  %#v\n want %#v", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseYAMLRejectsWhatItCannotReadSafely(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, src, wantErr string }{
		{"yaml 1.1 boolean", "TPE_DRY_RUN: yes\n", "quote it"},
		{"octal-looking number", "mode: 0644\n", "quote it"},
		{"sexagesimal", "t: 1:30\n", "quote it"},
		{"date", "d: 2026-01-02\n", "quote it"},
		{"anchor", "a: &x 1\n", "outside the subset"},
		{"block scalar", "a: |\n  x\n", "outside the subset"},
		{"tab indentation", "a:\n\tb: 1\n", "tab"},
		{"duplicate key", "a: 1\na: 2\n", "duplicate key"},
		{"bad indentation", "a:\n    b: 1\n  c: 2\n", "indentation"},
		{"colon in plain value", "a: b: c\n", "quote it"},
		{"unterminated quote", "a: \"x\n", "unterminated"},
		{"sequence where a key belongs", "a: 1\n- b\n", "sequence item"},
		{"flow mapping", "a: {b: 1}\n", "outside the subset"},
		{"not a mapping entry", "a: 1\nplain words\n", "key: value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseYAML(tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("parseYAML(%q) = %#v, %v; want an error containing %q", tt.src, got, err, tt.wantErr)
			}
		})
	}
}

// TestParseYAMLAgreesWithPyYAML reads every manifest with PyYAML too (the YAML 1.1 reader
// closest to Kubernetes' own) and wants the same documents, so the subset reader cannot
// silently misread a file. Skipped where python3 with PyYAML is not installed.
func TestParseYAMLAgreesWithPyYAML(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if err := exec.Command(py, "-c", "import yaml").Run(); err != nil {
		t.Skip("PyYAML not installed")
	}
	const script = "import sys, json, yaml\njson.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)"
	for _, path := range manifestPaths(t) {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, py, "-c", script, path).Output()
			if err != nil {
				t.Fatalf("PyYAML cannot read %s: %v", path, err)
			}
			mine, err := json.Marshal(readManifest(t, path))
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(mine, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: subset reader and PyYAML disagree\n subset %s\n PyYAML %s", path, mine, out)
			}
		})
	}
}
