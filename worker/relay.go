package worker

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// RelayOptions configures the webhook relay.
type RelayOptions struct {
	// Trust is what a notification must carry to be relayed (see Decode).
	Trust Trust
	// Enqueue puts the body on the queue under messageID (a hash of the body, so the
	// queue's duplicate detection drops Graph's retries). It must return only once the
	// message is stored. Required.
	Enqueue func(ctx context.Context, body []byte, messageID string) error
	// EnqueueTimeout bounds one Enqueue; zero means 10 s.
	EnqueueTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// MaxBody is the largest body accepted; zero means MaxBodyBytes (256 KiB).
	MaxBody int64
}

// relay forwards Graph webhook posts to the queue, for deployments without Event Grid.
type relay struct {
	o   RelayOptions
	log *slog.Logger
}

// NewRelay returns the handler Graph posts change and lifecycle notifications to. It
// answers the validation handshake, checks that a post carries at least one trusted item,
// and puts the original body on the queue; it never reconciles inline. Statuses: 200 for
// the handshake, 202 once the body is queued (or dropped as forged, so Graph does not
// retry it), 400 for a body that is not a notification, 413 beyond MaxBody, 503 when the
// queue refused (Graph retries), 405 for anything but POST.
func NewRelay(o RelayOptions) http.Handler {
	o.MaxBody = cmp.Or(o.MaxBody, MaxBodyBytes)
	o.EnqueueTimeout = cmp.Or(o.EnqueueTimeout, 10*time.Second)
	return &relay{o: o, log: cmp.Or(o.Logger, slog.Default())}
}

const (
	relayKeyRemote = "remote"
	relayKeyItems  = "rejected_items"
	relayKeyReason = "reason"
	relayKeyMsgID  = "message_id"
	relayKeyError  = "error"
)

func (h *relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	if token, ok := r.URL.Query()["validationToken"]; ok {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, token[0])
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
	d, err := Decode(body, nil, h.o.Trust)
	var perm *PermanentError
	if errors.As(err, &perm) {
		h.log.WarnContext(r.Context(), "relay: post is not a notification", relayKeyRemote, r.RemoteAddr, relayKeyReason, perm.Error())
		http.Error(w, "not a change notification", http.StatusBadRequest)
		return
	}
	if !anyTrusted(d) {
		if !d.Probe {
			h.log.WarnContext(r.Context(), "relay: post dropped, no trusted item", relayKeyRemote, r.RemoteAddr,
				relayKeyItems, len(d.Rejected), relayKeyReason, firstReason(d))
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	h.enqueue(w, r, body)
}

// enqueue stores the original body (the worker decodes and checks it again per item) and
// answers 202 only after the queue has it.
func (h *relay) enqueue(w http.ResponseWriter, r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	id := hex.EncodeToString(sum[:])
	ctx, cancel := context.WithTimeout(r.Context(), h.o.EnqueueTimeout)
	defer cancel()
	if err := h.o.Enqueue(ctx, body, id); err != nil {
		h.log.ErrorContext(r.Context(), "relay: enqueue failed; Graph will retry", relayKeyMsgID, id,
			relayKeyError, redactSecret(err.Error(), h.o.Trust.ClientState))
		http.Error(w, "queue unavailable", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// anyTrusted reports whether an item of the message passed the trust check: something to
// act on, or an item rejected for a reason other than trust (the worker dead-letters it
// where an operator can see it).
func anyTrusted(d Decoded) bool {
	if len(d.Principals)+len(d.Groups)+len(d.Lifecycle) > 0 {
		return true
	}
	for _, r := range d.Rejected {
		if r.Reason != ReasonUntrusted {
			return true
		}
	}
	return false
}

func firstReason(d Decoded) string {
	if len(d.Rejected) == 0 {
		return ""
	}
	return d.Rejected[0].Reason
}

// redactSecret cuts secret out of text (a collaborator's error may echo a request).
func redactSecret(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "[redacted]")
}
