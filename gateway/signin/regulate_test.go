package signin

import (
	"testing"
	"time"
)

func TestBanMessage(t *testing.T) {
	tests := []struct {
		wait time.Duration
		want string
	}{
		{time.Second, "Too many attempts. Try again in 1 minute."},
		{time.Minute, "Too many attempts. Try again in 1 minute."},
		{time.Minute + time.Second, "Too many attempts. Try again in 2 minutes."},
		{15 * time.Minute, "Too many attempts. Try again in 15 minutes."},
		{4 * time.Hour, "Too many attempts. Try again in 240 minutes."},
		{-time.Minute, "Too many attempts. Try again in 1 minute."},
	}
	for _, tt := range tests {
		if got := banMessage(tt.wait); got != tt.want+" (An administrator can lift this at once with authgate bans lift on the server.)" {
			t.Errorf("banMessage(%v) = %q, want %q", tt.wait, got, tt.want)
		}
	}
}
