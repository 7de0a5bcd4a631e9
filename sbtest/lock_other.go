//go:build !unix

package sbtest

// lockFile is a no-op where flock is unavailable: concurrent first installs may race
// there, so run "npm ci" in sbtest/node before the tests.
func lockFile(string) (func(), error) { return func() {}, nil }
