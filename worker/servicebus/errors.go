package servicebus

import (
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"github.com/tpe-provisioner/tpe-provisioner/worker"
)

// This file is the one classification of the SDK's errors, for receiving and sending alike.

// code returns the SDK's error code of err, or "" when it has none. Some link refusals (an
// absent entity on peek, say) reach the caller as go-amqp's *amqp.Error rather than an
// *azservicebus.Error; their AMQP condition is mapped to the SDK's code here.
func code(err error) azservicebus.Code {
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		return sbErr.Code
	}
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		switch amqpErr.Condition {
		case amqp.ErrCondNotFound:
			return azservicebus.CodeNotFound
		case amqp.ErrCondUnauthorizedAccess:
			return azservicebus.CodeUnauthorizedAccess
		}
	}
	return ""
}

// Explain adds to an error an operator can fix what to check: a missing queue or missing
// rights. Other errors are returned as they are.
// go-amqp's *amqp.Error, which renders as a Go struct, is shown as the service's description
// and its condition.
func Explain(err error) error {
	var hint string
	switch code(err) {
	case azservicebus.CodeNotFound:
		hint = "check SERVICEBUS_QUEUE: the queue does not exist in this namespace"
	case azservicebus.CodeUnauthorizedAccess:
		hint = "the identity or key lacks Listen/Send rights on the queue"
	default:
		return err
	}
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Description != "" {
		text := strings.Replace(err.Error(), amqpErr.Error(), amqpErr.Description, 1)
		return &explained{text: fmt.Sprintf("%s (%s; %s)", text, amqpErr.Condition, hint), err: err}
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// explained is an error shown with other words than its own; it still matches it.
type explained struct {
	text string
	err  error
}

func (e *explained) Error() string { return e.text }
func (e *explained) Unwrap() error { return e.err }

// isSystemic reports whether err means the queue cannot be used at all: the credentials are
// refused or the SDK gave up on the connection. The worker opens its circuit on it.
func isSystemic(err error) bool {
	c := code(err)
	return c == azservicebus.CodeUnauthorizedAccess || c == azservicebus.CodeConnectionLost
}

// lockErr wraps err, adding worker.ErrLockLost when Service Bus says the lock is gone.
func lockErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case code(err) == azservicebus.CodeLockLost:
		return fmt.Errorf("%s: %w: %w", op, worker.ErrLockLost, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// sendError is a failed send, classified for the worker: systemic when the queue refuses
// us or the connection is gone for good, else temporary.
type sendError struct {
	err      error
	systemic bool
}

// classifySend returns err as a sendError (nil stays nil).
func classifySend(err error) error {
	if err == nil {
		return nil
	}
	return &sendError{err: err, systemic: isSystemic(err)}
}

func (e *sendError) Error() string   { return e.err.Error() }
func (e *sendError) Unwrap() error   { return e.err }
func (e *sendError) Systemic() bool  { return e.systemic }
func (e *sendError) Temporary() bool { return !e.systemic }
