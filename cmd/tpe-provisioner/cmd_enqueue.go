package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
)

func init() {
	commands["enqueue"] = command{
		summary: "send message bodies (JSON Lines) to the queue: replay dead letters, or feed the local queue",
		args:    "FILE",
		detail:  "FILE holds JSON Lines, one message body per line; - reads stdin.",
		run:     runEnqueue,
	}
}

func runEnqueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	if err := c.bindGroups(fs, environ, groupQueue); err != nil {
		return err
	}
	pos, err := parseArgs(fs, args, stdout)
	if err != nil {
		return err
	}
	if err := onePositional(pos, "FILE"); err != nil {
		return err
	}
	if err := c.Validate(needs{source: true}); err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if path := pos[0]; path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	sender, closeSender, err := openSender(ctx, &c)
	if err != nil {
		return err
	}
	defer closeSender()
	n, err := enqueueLines(ctx, sender, in)
	fmt.Fprintf(stderr, "enqueued %d message(s) to %s\n", n, c.ServiceBusQueue)
	return err
}

// enqueueLines sends each non-blank line as one message, the body as it is (a dead-letter
// record written by `run --source file:` is unwrapped to its original body). The message id
// is a hash of the body, as the relay does, so the queue's duplicate detection drops a
// replay of a replay within its window.
func enqueueLines(ctx context.Context, s servicebus.MessageSender, in io.Reader) (int, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		body := bytes.TrimSpace(sc.Bytes())
		if len(body) == 0 {
			continue
		}
		body = unwrapDeadLetter(body)
		sum := sha256.Sum256(body)
		id := hex.EncodeToString(sum[:16])
		if err := servicebus.Send(ctx, s, bytes.Clone(body), id); err != nil {
			return n, fmt.Errorf("send line %d: %w", n+1, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, errors.Join(fmt.Errorf("read input: %w", err))
	}
	return n, nil
}

// unwrapDeadLetter returns the original body of a file source's dead-letter record
// ({"line":N,"reason":...,"description":...,"body":...}), or the line itself.
func unwrapDeadLetter(line []byte) []byte {
	var rec struct {
		Line   *int            `json:"line"`
		Reason *string         `json:"reason"`
		Body   json.RawMessage `json:"body"`
	}
	if json.Unmarshal(line, &rec) != nil || rec.Line == nil || rec.Reason == nil || len(rec.Body) == 0 {
		return line
	}
	var s string
	if json.Unmarshal(rec.Body, &s) == nil {
		return []byte(s) // the body was not JSON and was kept as a string
	}
	return rec.Body
}
