package main

import (
	"bytes"
	"encoding/json"
	stdlog "log"
	"testing"

	"github.com/rs/zerolog"
)

// Regression: net/http's transport wrote "Unsolicited response received
// on idle HTTP channel ..." through the standard logger, as plain text in
// the middle of the JSON log. Such lines become structured warnings.
func TestLibraryLogLinesAreStructured(t *testing.T) {
	var buf bytes.Buffer
	l := stdlog.New(libraryLog{zerolog.New(&buf)}, "", 0)
	l.Printf("Unsolicited response received on idle HTTP channel starting with %q; err=%v", "HTTP/1.1 200 OK", nil)
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("not one JSON line: %q (%v)", buf.String(), err)
	}
	if line["level"] != "warn" || line["component"] != "library" || line["message"] == "" {
		t.Fatalf("line = %v", line)
	}
}
