// Package testkit holds the two helpers nearly every test package of the
// gateway needs: a log sink safe to write from the goroutines under test
// while the test reads it (SyncBuffer), and a settable clock to inject as
// `now func() time.Time` (Clock).
//
// Only tests and the other gateway/internal test packages import it.
package testkit
