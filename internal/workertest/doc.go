// Package workertest holds test helpers for the packages around the worker: in-memory
// doubles of the directory and ACS (fakes.go), a log sink, a recording observer, the
// fixtures' tenant, clientState and users, and the notification builders (env.go). It is
// imported by tests only.
//
// The worker package's own internal tests cannot import it (it imports worker); they keep
// their doubles in worker/*_test.go.
package workertest
