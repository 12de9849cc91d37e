// Package metrics owns authgate's Prometheus metrics: a private registry
// (never the client library's global one), the events the gateway
// reports into it, scrape-time readings (active sessions, the drift
// estimate, the server clock's offset), an instrumented store.Store
// decorator, and the /metrics handler served on the separate metrics
// listener (metrics.listen). Nothing here authorises anything.
//
// Every event method is safe on a nil *Metrics (it does nothing), so
// callers hold a possibly-nil hook and need no checks.
package metrics
