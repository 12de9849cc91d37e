// Package drift finds clock drift before users complain about "The
// security code is invalid", and explains it when they do.
//
// A code that fails the normal window but matches the user's secret a few
// minutes away is evidence of a clock offset (gateway/factor finds it and
// never accepts it). The Recorder stores that evidence on the user (the
// last few offsets) off the request path and logs a warning; Analyze
// reads every user's recent evidence and tells a wrong server clock
// (several users' codes off by the same amount) from a wrong phone (one
// user's codes off, the others fine). Service also resynchronises a
// user's device from two consecutive codes (RFC 6238 §6), for the account
// page and the admin area.
//
// gateway/metrics counts the evidence (authgate_totp_drift_evidence_total) and
// reads Analyze's estimate at scrape time as the gauge of the server's
// likely offset (authgate_totp_drift_estimate_seconds).
package drift
