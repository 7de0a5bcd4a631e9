package worker

import (
	"os"
	"sync"
)

// DeadLetterFile is a FileSource's dead-letter output on disk. The file is opened by the
// first dead letter, for appending (created 0600 when absent), so a run that dead-letters
// nothing (or fails to start) leaves no file behind and a rerun keeps the earlier runs'
// dead letters.
type DeadLetterFile struct {
	path string

	mu  sync.Mutex
	f   *os.File
	err error // the open's error, returned by every later write
}

// NewDeadLetterFile returns the dead-letter output at path; it touches nothing yet.
func NewDeadLetterFile(path string) *DeadLetterFile { return &DeadLetterFile{path: path} }

// Path is the file's path.
func (d *DeadLetterFile) Path() string { return d.path }

// Write appends p, opening the file on the first call.
func (d *DeadLetterFile) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil && d.err == nil {
		d.f, d.err = os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	}
	if d.err != nil {
		return 0, d.err
	}
	return d.f.Write(p)
}

// Close closes the file if a dead letter opened it.
func (d *DeadLetterFile) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f, d.err = nil, os.ErrClosed
	return err
}
