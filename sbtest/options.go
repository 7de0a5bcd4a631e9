package sbtest

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"path/filepath"
	"runtime"
	"time"
)

// Options configures one endpoint. The zero value is usable.
type Options struct {
	// Queue is the queue the endpoint serves (with its $DeadLetterQueue). Default "tasks".
	Queue string
	// MoreQueues are further queues the endpoint serves next to Queue, with the same
	// settings. Stats reports Queue only.
	MoreQueues []string
	// LockDuration is how long a peek-lock holds before the message is delivered again.
	// Default 60 s, as on Service Bus; tests use about 2 s.
	LockDuration time.Duration
	// MaxDeliveryCount is the number of deliveries after which a message is dead-lettered
	// with reason MaxDeliveryCountExceeded. Default 10.
	MaxDeliveryCount int
	// DuplicateDetection creates the queue with requiresDuplicateDetection, as the deployed
	// queue is (deploy/bicep/modules/servicebus.bicep): a message whose message id was
	// sent within DuplicateDetectionWindow is accepted and dropped. Off by default, as on
	// Service Bus.
	DuplicateDetection bool
	// DuplicateDetectionWindow is the duplicate detection history time window. Default 10
	// minutes (Service Bus's default and the deployed queue's PT10M). Service Bus accepts
	// 20 s to 7 days; the endpoint takes shorter windows so tests can watch one end.
	DuplicateDetectionWindow time.Duration
	// KeyName and Key are the shared access key the connection string carries and $cbs
	// checks. Defaults: "RootManageSharedAccessKey" and a random key per endpoint.
	KeyName string
	Key     string
	// Dir is the directory holding server.js and package.json. Default: the node
	// directory next to this package's source.
	Dir string
	// Log receives the endpoint's diagnostics, one line per event (never keys or tokens).
	// Nil discards them.
	Log io.Writer
}

// Defaults.
const (
	DefaultQueue            = "tasks"
	DefaultLockDuration     = 60 * time.Second
	DefaultMaxDeliveryCount = 10
	DefaultKeyName          = "RootManageSharedAccessKey"
	// DefaultDuplicateDetectionWindow applies when DuplicateDetection is on and no window
	// is set.
	DefaultDuplicateDetectionWindow = 10 * time.Minute
)

// withDefaults returns o with every unset field filled in.
func (o Options) withDefaults() (Options, error) {
	if o.Queue == "" {
		o.Queue = DefaultQueue
	}
	if o.LockDuration <= 0 {
		o.LockDuration = DefaultLockDuration
	}
	if o.MaxDeliveryCount <= 0 {
		o.MaxDeliveryCount = DefaultMaxDeliveryCount
	}
	if o.DuplicateDetection && o.DuplicateDetectionWindow <= 0 {
		o.DuplicateDetectionWindow = DefaultDuplicateDetectionWindow
	}
	if o.KeyName == "" {
		o.KeyName = DefaultKeyName
	}
	if o.Key == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return o, err
		}
		o.Key = base64.StdEncoding.EncodeToString(b)
	}
	if o.Dir == "" {
		o.Dir = defaultDir()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o, nil
}

// defaultDir is sbtest/node in the source tree this package was built from.
func defaultDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "node"
	}
	return filepath.Join(filepath.Dir(file), "node")
}

// config is what server.js reads from SBTEST_CONFIG.
type config struct {
	Queues           []string `json:"queues"`
	LockDurationMs   int64    `json:"lockDurationMs"`
	MaxDeliveryCount int      `json:"maxDeliveryCount"`
	// DuplicateWindowMs is 0 without duplicate detection.
	DuplicateWindowMs int64  `json:"duplicateDetectionWindowMs"`
	KeyName           string `json:"keyName"`
	Key               string `json:"key"`
	Host              string `json:"host"`
}

func (o Options) config() config {
	var window int64
	if o.DuplicateDetection {
		window = o.DuplicateDetectionWindow.Milliseconds()
	}
	return config{
		DuplicateWindowMs: window,
		Queues:            append([]string{o.Queue}, o.MoreQueues...),
		LockDurationMs:    o.LockDuration.Milliseconds(),
		MaxDeliveryCount:  o.MaxDeliveryCount,
		KeyName:           o.KeyName,
		Key:               o.Key,
		Host:              "127.0.0.1",
	}
}
