package relay

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	clk "github.com/tpe-provisioner/tpe-provisioner/internal/clock"
	"github.com/tpe-provisioner/tpe-provisioner/internal/logkey"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// Options configures the webhook relay.
type Options struct {
	// worker.Trust is what a notification item must carry to be relayed (see worker.Decode). Its
	// ClientState and TenantID should both be set: an empty one is not checked.
	Trust worker.Trust
	// Enqueue puts the body on the queue under messageID (a hash of the body, so the
	// queue's duplicate detection drops Graph's retries). It must return only once the
	// message is stored, and should return when ctx ends. Required.
	Enqueue func(ctx context.Context, body []byte, messageID string) error
	// ResponseWindow is how long the relay has to answer a post, from when the handler
	// starts; the enqueue gets what is left of it. Graph waits 3 s for a 2xx and counts an
	// answer after 2.9 s as slow (enough slow answers throttle the endpoint), so the
	// default is 2.5 s. A post whose enqueue has not returned in time is answered 503
	// with Retry-After, so Graph delivers it again; it is never answered 202 unqueued.
	ResponseWindow time.Duration
	// MaxConcurrent bounds the posts being worked at once (default 32); beyond it the
	// relay answers 503 with Retry-After at once. A post whose enqueue outlived its
	// response window holds its slot until the enqueue returns, so a stalled queue
	// turns into quick 503s, not into piled-up goroutines.
	MaxConcurrent int
	// Rate is the steady number of posts per second accepted (default 50), with bursts of
	// up to Burst (default 2×Rate); beyond it the relay answers 429 with Retry-After.
	Rate  float64
	Burst int
	// worker.Clock drives the rate limiter; default the system clock.
	Clock worker.Clock
	// Logger; nil discards.
	Logger *slog.Logger
	// MaxBody is the largest body accepted; zero means worker.MaxBodyBytes (256 KiB).
	MaxBody int64
}

// MaxValidationTokenLength bounds the validationToken the relay echoes. Graph's tokens are
// a short sentence with a request id (about 100 characters); nothing longer is echoed.
const MaxValidationTokenLength = 1024

// relay forwards Graph webhook posts to the queue, for deployments without Event Grid.
type relay struct {
	o       Options
	log     *slog.Logger
	slots   chan struct{}
	limiter *tokenBucket
}

// New returns the handler Graph posts change and lifecycle notifications to. The
// relay is public (Graph must reach it), so it trusts nothing it is sent:
//
//   - only POST (405);
//   - at most MaxConcurrent posts at once (503) and Rate per second (429), both with
//     Retry-After;
//   - the validation handshake (POST ?validationToken=..., empty body) is answered 200
//     text/plain with the token, only when it is one printable token of at most
//     MaxValidationTokenLength characters (400 otherwise);
//   - a notification post must be JSON (415 otherwise) of at most MaxBody (413);
//   - it must be a Graph changeNotificationCollection {"value":[...]}; the items that pass
//     the clientState and tenant check are re-serialised into a new collection, holding
//     only the fields the worker reads, and that is queued. Anything else — a command, a
//     CloudEvent, garbage, a collection with no trusted item — is 400 and nothing is
//     queued, so a caller without our clientState cannot make us do anything;
//   - 202 once the queue has the message, 503 with Retry-After when the queue refused or
//     did not answer within ResponseWindow (Graph retries).
//
// It never reconciles inline.
func New(o Options) http.Handler {
	o.MaxBody = cmp.Or(o.MaxBody, worker.MaxBodyBytes)
	o.ResponseWindow = cmp.Or(o.ResponseWindow, 2500*time.Millisecond)
	o.MaxConcurrent = cmp.Or(max(o.MaxConcurrent, 0), 32)
	o.Rate = cmp.Or(max(o.Rate, 0), 50)
	o.Burst = cmp.Or(max(o.Burst, 0), int(2*o.Rate)+1)
	if o.Clock == nil {
		o.Clock = clk.System{}
	}
	return &relay{o: o, log: cmp.Or(o.Logger, slog.New(slog.DiscardHandler)),
		slots:   make(chan struct{}, o.MaxConcurrent),
		limiter: newTokenBucket(o.Rate, o.Burst, o.Clock)}
}

func (h *relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	select {
	case h.slots <- struct{}{}:
	default:
		answerRetryLater(w, http.StatusServiceUnavailable, time.Second, "too many posts in flight")
		return
	}
	release := func() { <-h.slots }
	defer func() {
		if release != nil {
			release()
		}
	}()
	if wait, ok := h.limiter.take(); !ok {
		answerRetryLater(w, http.StatusTooManyRequests, wait, "too many posts")
		return
	}
	if _, ok := r.URL.Query()["validationToken"]; ok {
		h.handshake(w, r)
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		http.Error(w, "a notification post must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "could not read body", http.StatusBadRequest)
		return
	}
	fwd, rejected, err := worker.Forwardable(body, h.o.Trust)
	if err != nil {
		h.log.WarnContext(r.Context(), "relay: post refused", logkey.Remote, r.RemoteAddr, logkey.Reason, err.Error(),
			logkey.RejectedItems, rejected)
		http.Error(w, "not a trusted Graph change notification collection", http.StatusBadRequest)
		return
	}
	if rejected > 0 {
		h.log.WarnContext(r.Context(), "relay: untrusted items dropped", logkey.Remote, r.RemoteAddr, logkey.RejectedItems, rejected)
	}
	// From here the slot belongs to the enqueue, however long it takes.
	release = nil
	h.enqueue(w, r, fwd, start.Add(h.o.ResponseWindow))
}

// handshake answers Graph's notificationUrl validation: the token, decoded, as text/plain.
// Nothing else is echoed: one token, printable, bounded, and no body.
func (h *relay) handshake(w http.ResponseWriter, r *http.Request) {
	tokens := r.URL.Query()["validationToken"]
	if len(tokens) != 1 || !printableToken(tokens[0]) {
		http.Error(w, "bad validationToken", http.StatusBadRequest)
		return
	}
	if n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1)); n > 0 {
		http.Error(w, "a validation request has no body", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-worker.Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, tokens[0])
}

// printableToken reports whether a validation token is short and holds only printable
// characters (no controls, no format characters).
func printableToken(s string) bool {
	if s == "" || len(s) > MaxValidationTokenLength {
		return false
	}
	for _, r := range s {
		if r != ' ' && !worker.PrintableRune(r) {
			return false
		}
	}
	return true
}

// isJSON reports whether a Content-Type is application/json (parameters such as charset
// allowed).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// enqueue stores the re-serialised collection and answers 202 only after the queue has it.
// When the queue does not answer by deadline the post is answered 503 so Graph delivers
// it again; the enqueue goes on in the background (holding its concurrency slot) and, if
// it succeeds late, the queue's duplicate detection drops Graph's retry, which hashes to
// the same message id.
func (h *relay) enqueue(w http.ResponseWriter, r *http.Request, body []byte, deadline time.Time) {
	sum := sha256.Sum256(body)
	id := hex.EncodeToString(sum[:])
	ctx, cancel := context.WithDeadline(context.WithoutCancel(r.Context()), deadline.Add(h.o.ResponseWindow))
	done := make(chan error, 1)
	go func() {
		defer func() { <-h.slots }()
		defer cancel()
		done <- h.o.Enqueue(ctx, body, id)
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			h.log.ErrorContext(r.Context(), "relay: enqueue failed; Graph will retry", logkey.MessageID, id,
				logkey.Error, worker.RedactSecret(err.Error(), h.o.Trust.ClientState))
			answerRetryLater(w, http.StatusServiceUnavailable, 5*time.Second, "queue unavailable")
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case <-timer.C:
		h.log.ErrorContext(r.Context(), "relay: the queue did not answer within the response window; Graph will retry",
			logkey.MessageID, id, "window", h.o.ResponseWindow.String())
		answerRetryLater(w, http.StatusServiceUnavailable, 5*time.Second, "queue too slow")
	}
}

// answerRetryLater answers code with a Retry-After of at least one second.
func answerRetryLater(w http.ResponseWriter, code int, after time.Duration, msg string) {
	secs := max(int((after+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, msg, code)
}
