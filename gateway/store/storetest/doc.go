// Package storetest is the one conformance suite every store.Store backend
// passes. A backend's test calls Run with a function that builds a fresh,
// empty store and a way to move that store's notion of time forward:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness {
//			clk := newFakeClock()
//			s := openStore(t, clk.Now)
//			return storetest.Harness{Store: s, Advance: clk.Advance}
//		})
//	}
//
// Subtests run in parallel, so newHarness may be called concurrently and
// each call must return an isolated store (a fresh file, or a unique key
// prefix on a shared server). Backends whose expiry follows a real clock
// (Redis) pass an Advance that sleeps; the suite keeps its TTLs below a
// second so that stays fast.
package storetest
