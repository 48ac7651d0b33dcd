// Package testpeer starts the real servers the connector tests talk to —
// an S3-compatible object store (versitygw) and Stripe's API simulator
// (stripe-mock) — and a PgBouncer in transaction mode in front of the test
// PostgreSQL, as child processes on loopback ports, one per test (or per
// package, from TestMain), and stops them when the test ends.
//
// The binaries are installed once per machine by `make test`
// (scripts/ensure-peers.sh: go install into GOBIN or GOPATH/bin); a test that cannot find one fails with the command to run.
// It never skips: a connector test that quietly did not run would hide a
// broken erasure.
package testpeer
