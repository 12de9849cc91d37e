// Package testkit holds the helpers nearly every test package of the
// gateway needs: a log sink safe to write from the goroutines under test
// while the test reads it (SyncBuffer), a settable clock to inject as
// `now func() time.Time` (Clock), and a last-byte barrier that makes many
// HTTP requests reach a server at the same moment (Burst), for tests of
// check-then-act races.
//
// Only tests and the other gateway/internal test packages import it.
package testkit
