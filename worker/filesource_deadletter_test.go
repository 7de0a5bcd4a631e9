package worker_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// drainFileSource dead-letters every message of src and returns when it is read to the end.
func drainFileSource(t *testing.T, src *worker.FileSource) {
	t.Helper()
	ctx := context.Background()
	for {
		ds, err := src.Receive(ctx, 10)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if err := src.DeadLetter(ctx, d, "malformed", "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestDeadLetterFileIsCreatedOnlyByTheFirstDeadLetter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl.deadletter.jsonl")
	dl := worker.NewDeadLetterFile(path)
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a dead-letter file with no dead letters exists (stat: %v)", err)
	}
}

func TestDeadLetterFileAppendsToThePreviousRunsDeadLetters(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl.deadletter.jsonl")
	const previous = `{"line":3,"reason":"untrusted","description":"earlier run","body":"x"}` + "\n"
	if err := os.WriteFile(path, []byte(previous), 0o600); err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 2; run++ {
		dl := worker.NewDeadLetterFile(path)
		drainFileSource(t, worker.NewFileSource(strings.NewReader("not json\n"), dl, worker.FileOptions{}))
		if err := dl.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 3 || lines[0]+"\n" != previous || !strings.Contains(lines[1], `"body":"not json"`) || lines[1] != lines[2] {
		t.Fatalf("dead-letter file after two runs:\n%s\nwant the previous line, then one line per run", got)
	}
}
