package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
	"github.com/tpe-provisioner/tpe-provisioner/worker/servicebus"
)

func init() {
	commands["deadletters"] = command{
		summary: "list, show, resubmit or purge the queue's dead letters",
		args:    "list|show|resubmit|purge [SEQUENCE_NUMBER...]",
		detail: `  list                     the dead letters: sequence number, enqueued time, reason, description,
                           principal when the body names one
  show SEQ                 one dead letter in full (clientState values redacted)
  resubmit [SEQ...]        send each selected dead letter's original body, content type and
                           application properties back to the queue, then remove the dead letter;
                           all of them unless SEQ or --reason selects; --dry-run only lists them
  purge [SEQ...]           remove the selected dead letters (all unless SEQ or --reason selects);
                           asks on a terminal, needs --yes otherwise`,
		exits: []exitCode{
			{1, "also: purge was not confirmed on the terminal (nothing deleted)"},
			{2, "also: purge off a terminal without --yes (nothing deleted)"},
			{4, "show: no dead letter with that sequence number"},
		},
		run: runDeadLetters,
	}
}

// Dead-letter properties Service Bus adds (application properties of the dead letter); a
// resubmitted message leaves them behind.
var deadLetterProps = []string{"DeadLetterReason", "DeadLetterErrorDescription", "DeadLetterSource"}

// Application properties a resubmitted message carries so it can be traced to its dead letter.
const (
	propResubmittedFrom = "tpe-resubmitted-from-message-id"
	propResubmittedSeq  = "tpe-resubmitted-from-sequence-number"
)

// deadLetterReceiveWait bounds one receive from the dead-letter sub-queue while resubmitting
// or purging: when it passes with nothing received, the messages still sought are gone.
var deadLetterReceiveWait = 5 * time.Second

var deadLetterVerbs = []string{"list", "show", "resubmit", "purge"}

// deadLetterCmd is the parsed command line of deadletters.
type deadLetterCmd struct {
	cfg    Config
	verb   string
	seqs   []int64
	reason string
	dryRun bool
	yes    bool
	output string
	max    int
}

func parseDeadLetters(args []string, stdout io.Writer) (*deadLetterCmd, error) {
	d := &deadLetterCmd{}
	fs := flag.NewFlagSet("deadletters", flag.ContinueOnError)
	if err := d.cfg.bindGroups(fs, environ, groupQueue, groupLog); err != nil {
		return nil, err
	}
	out := outputFormatFlag(fs, "table")
	fs.StringVar(&d.reason, "reason", "", "resubmit/purge only the dead letters with this reason (e.g. MaxDeliveryCountExceeded)")
	fs.BoolVar(&d.dryRun, "dry-run", false, "resubmit: list what would be resubmitted, change nothing")
	yesFlag(fs, &d.yes)
	fs.IntVar(&d.max, "max", 10000, "read at most this many dead letters")
	pos, err := parseArgs(fs, args, stdout)
	if err != nil {
		return nil, err
	}
	if len(pos) == 0 {
		return nil, usagef("missing the command: list, show, resubmit or purge")
	}
	d.verb, d.output = pos[0], *out
	for _, a := range pos[1:] {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			return nil, usagef("%q is not a sequence number", a)
		}
		d.seqs = append(d.seqs, n)
	}
	switch {
	case !slices.Contains(deadLetterVerbs, d.verb):
		return nil, usagef("unknown deadletters command %q (want list, show, resubmit or purge)%s", d.verb, didYouMean(d.verb, deadLetterVerbs))
	case d.verb == "show" && len(d.seqs) != 1:
		return nil, usagef("show takes one sequence number")
	case d.verb == "list" && len(d.seqs) > 0:
		return nil, usagef("list takes no sequence numbers")
	case d.max < 1:
		return nil, usagef("--max must be at least 1")
	}
	return d, d.cfg.Validate(needs{source: true})
}

func runDeadLetters(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d, err := parseDeadLetters(args, stdout)
	if err != nil {
		return err
	}
	client, err := servicebus.NewClient(sbConfig(&d.cfg))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = client.Close(cctx)
	}()
	dlq := &deadLetterQueue{client: client, queue: d.cfg.ServiceBusQueue}
	letters, err := dlq.peek(ctx, d.max)
	if err != nil {
		return err
	}
	switch d.verb {
	case "list":
		return printDeadLetters(stdout, d.output, letters)
	case "show":
		i := slices.IndexFunc(letters, func(l deadLetter) bool { return l.SequenceNumber == d.seqs[0] })
		if i < 0 {
			return &exitError{code: 4, err: fmt.Errorf("no dead letter with sequence number %d in %s", d.seqs[0], dlq.path())}
		}
		return showDeadLetter(stdout, d.output, letters[i])
	}
	selected := selectDeadLetters(letters, d.seqs, d.reason)
	if missing := missingSeqs(selected, d.seqs); len(missing) > 0 {
		return fmt.Errorf("no dead letter with sequence number %s in %s; nothing changed", joinSeqs(missing), dlq.path())
	}
	if len(selected) == 0 {
		fmt.Fprintf(stderr, "no dead letters to %s in %s\n", d.verb, dlq.path())
		return printDeadLetters(stdout, d.output, nil)
	}
	if d.verb == "resubmit" && d.dryRun {
		fmt.Fprintf(stderr, "dry run: would resubmit %d dead letter(s) to %s\n", len(selected), d.cfg.ServiceBusQueue)
		return printDeadLetters(stdout, d.output, selected)
	}
	if d.verb == "purge" {
		if err := confirm(d.yes, "purge", fmt.Sprintf("%d dead letter(s) from %s", len(selected), dlq.path()), stderr); err != nil {
			return err
		}
	}
	done, err := dlq.settle(ctx, selected, d.verb == "resubmit")
	fmt.Fprintf(stderr, "%s: %d of %d dead letter(s) from %s\n", pastTense(d.verb), len(done), len(selected), dlq.path())
	if perr := printDeadLetters(stdout, d.output, done); err == nil {
		err = perr
	}
	return err
}

func pastTense(verb string) string {
	if verb == "resubmit" {
		return "resubmitted"
	}
	return "purged"
}

// deadLetter is one message of the dead-letter sub-queue, as list and show print it.
type deadLetter struct {
	SequenceNumber int64          `json:"sequenceNumber"`
	MessageID      string         `json:"messageId"`
	EnqueuedTime   time.Time      `json:"enqueuedTime"`
	DeliveryCount  uint32         `json:"deliveryCount"`
	Reason         string         `json:"reason"`
	Description    string         `json:"description"`
	Principals     []string       `json:"principals,omitempty"`
	ContentType    string         `json:"contentType,omitempty"`
	Properties     map[string]any `json:"applicationProperties,omitempty"`
	Body           string         `json:"body,omitempty"` // show only; clientState redacted

	msg *azservicebus.ReceivedMessage
}

func newDeadLetter(m *azservicebus.ReceivedMessage) deadLetter {
	l := deadLetter{MessageID: m.MessageID, DeliveryCount: m.DeliveryCount, msg: m,
		Reason: deref(m.DeadLetterReason), Description: deref(m.DeadLetterErrorDescription),
		ContentType: deref(m.ContentType), Properties: originalProps(m.ApplicationProperties)}
	if m.SequenceNumber != nil {
		l.SequenceNumber = *m.SequenceNumber
	}
	if m.EnqueuedTime != nil {
		l.EnqueuedTime = m.EnqueuedTime.UTC()
	}
	l.Principals = principalsOf(m.Body, l.Properties)
	return l
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// originalProps are the application properties without the ones dead-lettering added.
func originalProps(p map[string]any) map[string]any {
	out := maps.Clone(p)
	for _, k := range deadLetterProps {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// principalsOf decodes the body as the worker would (without the trust checks, since it
// only names what the message is about) and returns the principals and groups it names.
func principalsOf(body []byte, props map[string]any) []string {
	dec, err := worker.Decode(body, props, worker.Trust{})
	if err != nil {
		return nil
	}
	var out []string
	for _, t := range dec.Principals {
		out = append(out, t.Principal)
	}
	for _, g := range dec.Groups {
		out = append(out, "group "+g)
	}
	return out
}

// redactBody returns the body for show with every clientState value replaced: a
// notification carries the subscription's secret.
func redactBody(body []byte) string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return string(body)
	}
	out, err := json.MarshalIndent(redactClientState(v), "", "  ")
	if err != nil {
		return string(body)
	}
	return string(out)
}

func redactClientState(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if strings.EqualFold(k, "clientState") {
				x[k] = "[redacted]"
			} else {
				x[k] = redactClientState(val)
			}
		}
	case []any:
		for i := range x {
			x[i] = redactClientState(x[i])
		}
	}
	return v
}

func selectDeadLetters(all []deadLetter, seqs []int64, reason string) []deadLetter {
	return slices.DeleteFunc(slices.Clone(all), func(l deadLetter) bool {
		return (len(seqs) > 0 && !slices.Contains(seqs, l.SequenceNumber)) || (reason != "" && l.Reason != reason)
	})
}

// missingSeqs are the asked-for sequence numbers not among the selected letters.
func missingSeqs(selected []deadLetter, seqs []int64) []int64 {
	return slices.DeleteFunc(slices.Clone(seqs), func(n int64) bool {
		return slices.ContainsFunc(selected, func(l deadLetter) bool { return l.SequenceNumber == n })
	})
}

func joinSeqs(seqs []int64) string {
	s := make([]string, len(seqs))
	for i, n := range seqs {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, ", ")
}

func printDeadLetters(w io.Writer, output string, letters []deadLetter) error {
	if output == "json" {
		if letters == nil {
			letters = []deadLetter{}
		}
		return printJSON(w, letters)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tENQUEUED\tREASON\tDESCRIPTION\tPRINCIPAL")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", l.SequenceNumber, l.EnqueuedTime.Format(time.RFC3339), l.Reason,
			oneLine(l.Description, 60), strings.Join(l.Principals, ", "))
	}
	return tw.Flush()
}

func showDeadLetter(w io.Writer, output string, l deadLetter) error {
	l.Body = redactBody(l.msg.Body)
	if output == "json" {
		return printJSON(w, l)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "sequence number\t%d\n", l.SequenceNumber)
	fmt.Fprintf(tw, "message id\t%s\n", l.MessageID)
	fmt.Fprintf(tw, "enqueued\t%s\n", l.EnqueuedTime.Format(time.RFC3339))
	fmt.Fprintf(tw, "delivery count\t%d\n", l.DeliveryCount)
	fmt.Fprintf(tw, "reason\t%s\n", l.Reason)
	fmt.Fprintf(tw, "description\t%s\n", l.Description)
	fmt.Fprintf(tw, "principals\t%s\n", strings.Join(l.Principals, ", "))
	if l.ContentType != "" {
		fmt.Fprintf(tw, "content type\t%s\n", l.ContentType)
	}
	for _, k := range slices.Sorted(maps.Keys(l.Properties)) {
		fmt.Fprintf(tw, "property %s\t%v\n", k, l.Properties[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "body:\n%s\n", l.Body)
	return err
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// deadLetterQueue reads and settles the queue's dead-letter sub-queue.
type deadLetterQueue struct {
	client *azservicebus.Client
	queue  string
}

func (q *deadLetterQueue) path() string { return q.queue + "/$DeadLetterQueue" }

func (q *deadLetterQueue) receiver() (*azservicebus.Receiver, error) {
	r, err := q.client.NewReceiverForQueue(q.queue, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", q.path(), err)
	}
	return r, nil
}

// peek reads up to max dead letters without locking them.
func (q *deadLetterQueue) peek(ctx context.Context, max int) ([]deadLetter, error) {
	r, err := q.receiver()
	if err != nil {
		return nil, err
	}
	defer r.Close(context.WithoutCancel(ctx))
	var out []deadLetter
	for len(out) < max {
		msgs, err := r.PeekMessages(ctx, min(250, max-len(out)), nil)
		if err != nil {
			return nil, fmt.Errorf("peek %s: %w", q.path(), servicebus.Explain(err))
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			out = append(out, newDeadLetter(m))
		}
	}
	return out, nil
}

// settle receives the selected dead letters under a lock and, for each, sends its copy back
// to the queue (when resubmit) and then completes it; the copy is sent before the dead letter
// is removed, so a failure loses nothing (at worst the message is both resubmitted and still
// dead-lettered; its resubmit id is the same on a second try, so duplicate detection drops
// the second copy). Dead letters not selected are locked while the selected ones are
// sought and abandoned afterwards. It returns the letters it finished.
func (q *deadLetterQueue) settle(ctx context.Context, selected []deadLetter, resubmit bool) ([]deadLetter, error) {
	r, err := q.receiver()
	if err != nil {
		return nil, err
	}
	defer r.Close(context.WithoutCancel(ctx))
	var sender *azservicebus.Sender
	if resubmit {
		if sender, err = q.client.NewSender(q.queue, nil); err != nil {
			return nil, fmt.Errorf("open the sender to %s: %w", q.queue, err)
		}
		defer sender.Close(context.WithoutCancel(ctx))
	}
	want := map[int64]bool{}
	for _, l := range selected {
		want[l.SequenceNumber] = true
	}
	var held []*azservicebus.ReceivedMessage
	defer func() {
		for _, m := range held {
			_ = r.AbandonMessage(context.WithoutCancel(ctx), m, nil)
		}
	}()
	var done []deadLetter
	for len(want) > 0 {
		rctx, cancel := context.WithTimeout(ctx, deadLetterReceiveWait)
		msgs, err := r.ReceiveMessages(rctx, min(len(want), 100), nil)
		cancel()
		if len(msgs) == 0 {
			if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				return done, fmt.Errorf("receive from %s: %w", q.path(), servicebus.Explain(err))
			}
			return done, fmt.Errorf("%d selected dead letter(s) (sequence %s) could not be received from %s within %s: settled by someone else, or locked", len(want), joinSeqs(slices.Sorted(maps.Keys(want))), q.path(), deadLetterReceiveWait)
		}
		for _, m := range msgs {
			l := newDeadLetter(m)
			if !want[l.SequenceNumber] {
				held = append(held, m)
				continue
			}
			if resubmit {
				if err := sender.SendMessage(ctx, resubmitted(m, l.SequenceNumber), nil); err != nil {
					held = append(held, m)
					return done, fmt.Errorf("resubmit dead letter %d to %s: %w", l.SequenceNumber, q.queue, servicebus.Explain(err))
				}
			}
			if err := r.CompleteMessage(ctx, m, nil); err != nil {
				return done, fmt.Errorf("remove dead letter %d (already resubmitted: %v): %w", l.SequenceNumber, resubmit, servicebus.Explain(err))
			}
			delete(want, l.SequenceNumber)
			done = append(done, l)
		}
	}
	return done, nil
}

// resubmitted is the message that replays dead letter m: its original body, content type,
// subject, correlation id and application properties (without the dead-letter ones). The
// message id is new but the same for every try of this dead letter: the original id would be
// dropped by the queue's duplicate detection within its window.
func resubmitted(m *azservicebus.ReceivedMessage, seq int64) *azservicebus.Message {
	sum := sha256.Sum256([]byte(m.MessageID))
	id := fmt.Sprintf("resubmit-%d-%s", seq, hex.EncodeToString(sum[:8]))
	props := originalProps(m.ApplicationProperties)
	if props == nil {
		props = map[string]any{}
	}
	props[propResubmittedFrom] = m.MessageID
	props[propResubmittedSeq] = seq
	return &azservicebus.Message{
		MessageID:             &id,
		Body:                  m.Body,
		ContentType:           m.ContentType,
		Subject:               m.Subject,
		CorrelationID:         m.CorrelationID,
		SessionID:             m.SessionID,
		ApplicationProperties: props,
	}
}
