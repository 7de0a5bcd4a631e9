package servicebus

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"
)

// TestExplainNamesWhatAnOperatorCanFix checks that a missing queue or missing rights are
// recognised whether the SDK returns its own *azservicebus.Error or go-amqp's *amqp.Error
// (as it does for a peek of an absent entity), and that nothing else is dressed up.
func TestExplainNamesWhatAnOperatorCanFix(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"sdk not found", &azservicebus.Error{Code: azservicebus.CodeNotFound}, "check SERVICEBUS_QUEUE"},
		{"amqp not found, wrapped", fmt.Errorf("peek: %w", &amqp.Error{Condition: amqp.ErrCondNotFound}), "check SERVICEBUS_QUEUE"},
		{"sdk unauthorized", &azservicebus.Error{Code: azservicebus.CodeUnauthorizedAccess}, "lacks Listen/Send rights"},
		{"amqp unauthorized", &amqp.Error{Condition: amqp.ErrCondUnauthorizedAccess}, "lacks Listen/Send rights"},
		{"other amqp condition", &amqp.Error{Condition: amqp.ErrCondInternalError}, ""},
		{"plain error", errors.New("boom"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Explain(tt.err)
			if !errors.Is(got, tt.err) {
				t.Errorf("Explain(%v) = %v, which no longer wraps the error", tt.err, got)
			}
			if tt.want == "" && got.Error() != tt.err.Error() {
				t.Errorf("Explain(%v) = %q, want it unchanged", tt.err, got)
			}
			if tt.want != "" && !strings.Contains(got.Error(), tt.want) {
				t.Errorf("Explain(%v) = %q, want it to say %q", tt.err, got, tt.want)
			}
		})
	}
	// go-amqp's own rendering (*Error{Condition: …, Info: map[]}) is for programmers: an
	// operator reads the service's description, the condition and what to check.
	peek := fmt.Errorf("peek: %w", &amqp.Error{Condition: amqp.ErrCondNotFound,
		Description: "The messaging entity 'tpe-notificatons' could not be found."})
	want := "peek: The messaging entity 'tpe-notificatons' could not be found. (amqp:not-found; check SERVICEBUS_QUEUE: the queue does not exist in this namespace)"
	if got := Explain(peek).Error(); got != want {
		t.Errorf("Explain(amqp not found) = %q, want %q", got, want)
	}
	if !isSystemic(&amqp.Error{Condition: amqp.ErrCondUnauthorizedAccess}) {
		t.Error("an AMQP unauthorized-access refusal is not systemic")
	}
}
