package users

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/store"
)

// MaxBansListed caps how many bans Bans returns.
const MaxBansListed = 1000

// maxTargetLen bounds a LiftBan target (a user name typed at the login
// form is at most 128 bytes; addresses and keys are shorter).
const maxTargetLen = 256

// BanInfo is an active sign-in ban as admins see it.
type BanInfo struct {
	// Key identifies the ban; LiftBan accepts it.
	Key string `json:"key"`
	// Kind is "user" or "ip".
	Kind string `json:"kind"`
	// Subject is the user name as typed at the login form (it may name
	// no account) or the client address (IPv6: its /64).
	Subject  string    `json:"subject"`
	Failures int64     `json:"failures"`
	Level    int       `json:"level"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
}

func banInfo(b store.Ban) BanInfo {
	return BanInfo{Key: b.Key, Kind: b.Kind, Subject: b.Subject, Failures: b.Failures, Level: b.Level, Since: b.Since, Until: b.Until}
}

// Bans implements Admin.
func (s *Service) Bans(ctx context.Context) ([]BanInfo, error) {
	bs, err := s.st.ListBans(ctx, MaxBansListed)
	if err != nil {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	out := make([]BanInfo, 0, len(bs))
	for _, b := range bs {
		out = append(out, banInfo(b))
	}
	return out, nil
}

// LiftBan implements Admin: every ban target means is lifted and its
// failure count cleared, each recorded in the audit trail.
func (s *Service) LiftBan(ctx context.Context, target string) ([]BanInfo, error) {
	target = strings.TrimSpace(target)
	if target == "" || len(target) > maxTargetLen {
		return nil, invalid("ban target", "ban target must be a user name, an IP address or a ban key")
	}
	lifted, err := regulation.Lift(ctx, s.st, target)
	out := make([]BanInfo, 0, len(lifted))
	for _, b := range lifted {
		s.record(ctx, audit.BanLifted, b.Subject, fmt.Sprintf("%s ban lifted (it ran until %s)", b.Kind, b.Until.UTC().Format(time.RFC3339)))
		out = append(out, banInfo(b))
	}
	if err != nil {
		return out, fmt.Errorf("lift ban of %q: %w", target, err)
	}
	return out, nil
}
