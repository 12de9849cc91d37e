package templates

// ClockStatus is the "Server clock" block of the admin Settings page
// (partial _clock.html, template "clock"): the server clock measured
// against NTP. Values are preformatted.
type ClockStatus struct {
	// Configured is false when time.ntp_servers is empty: the block shows
	// how to turn the check on.
	Configured bool
	// Servers lists the configured NTP servers.
	Servers []string
	// Measured: a measurement succeeded at least once; Offset ("7s
	// behind", "12ms ahead"), Server, At and RTT describe the last one.
	Measured bool
	Offset   string
	Server   string
	At       string
	RTT      string
	// Warning: the offset exceeds WarnOver ("5s"); the block shows a
	// warning badge and the Fixes.
	Warning  bool
	WarnOver string
	// Error is why the last attempt failed ("" if it succeeded); Hint
	// says what to check.
	Error string
	Hint  string
	Fixes []ClockFix
}

// ClockFix is one platform's command to turn on time synchronisation.
type ClockFix struct {
	Platform string
	Command  string
}
