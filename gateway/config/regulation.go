package config

import "time"

// Regulation configures the brute-force protection: failed sign-in
// attempts (password or code) are counted per user name and per client
// address in the store, shared by every instance.
type Regulation struct {
	// MaxFailures failed attempts within Window start a ban. Default 5.
	MaxFailures int `yaml:"max_failures"`
	// Window is how long failures are remembered; at most Ban. Default 5m.
	Window time.Duration `yaml:"window"`
	// Ban is how long the first ban lasts. Default 15m.
	Ban time.Duration `yaml:"ban"`
	// MaxBan caps a repeat offender's ban, which doubles with every ban
	// within 24 hours. Default 4h.
	MaxBan time.Duration `yaml:"max_ban"`
}

// Regulation defaults and bounds.
const (
	DefaultMaxFailures   = 5
	DefaultRegWindow     = 5 * time.Minute
	DefaultBan           = 15 * time.Minute
	DefaultMaxBan        = 4 * time.Hour
	MaxRegMaxFailures    = 1000
	MaxRegWindow         = 24 * time.Hour
	MaxRegBan            = 30 * 24 * time.Hour
	MaxPasswordMaxConcur = 1024
	// MinPasswordCPUShare is the smallest password.cpu_share.
	MinPasswordCPUShare = 0.05
)

func (k *checker) regulation() {
	r := k.c.Regulation
	if r.MaxFailures < 1 || r.MaxFailures > MaxRegMaxFailures {
		k.add("regulation.max_failures", "must be between 1 and %d, got %d", MaxRegMaxFailures, r.MaxFailures)
	}
	if r.Window < time.Second || r.Window > MaxRegWindow {
		k.add("regulation.window", "must be between 1s and %v, got %v", MaxRegWindow, r.Window)
	}
	if r.Ban < time.Second || r.Ban > MaxRegBan {
		k.add("regulation.ban", "must be between 1s and %v, got %v", MaxRegBan, r.Ban)
	} else if r.Window > r.Ban {
		// Failures counted before a ban must be forgotten when it ends,
		// or the next failure could not start a new one.
		k.add("regulation.window", "must not exceed regulation.ban (%v), got %v", r.Ban, r.Window)
	}
	switch {
	case r.MaxBan > MaxRegBan:
		k.add("regulation.max_ban", "must be at most %v, got %v", MaxRegBan, r.MaxBan)
	case r.MaxBan < r.Ban:
		k.add("regulation.max_ban", "must be at least regulation.ban (%v), got %v", r.Ban, r.MaxBan)
	}
	if n := k.c.Password.MaxConcurrent; n < 0 || n > MaxPasswordMaxConcur {
		k.add("password.max_concurrent", "must be between 0 (one per CPU) and %d, got %d", MaxPasswordMaxConcur, n)
	}
	if f := k.c.Password.CPUShare; !(f >= MinPasswordCPUShare && f <= 1) {
		k.add("password.cpu_share", "must be between %g and 1, got %g", MinPasswordCPUShare, f)
	}
}
