package regulation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

// Defaults of Options.
const (
	DefaultMaxFailures  = 5
	DefaultWindow       = 5 * time.Minute
	DefaultBan          = 15 * time.Minute
	DefaultMaxBan       = 4 * time.Hour
	DefaultRepeatWindow = 24 * time.Hour
	// maxSubjectLen bounds the user name kept in a ban for display.
	maxSubjectLen = 64
	// ipv6Prefix is the size of the IPv6 network counted as one client.
	ipv6Prefix = 64
)

// Key prefixes. Ban keys are "u:<hash>" and "ip:<addr or prefix>"; the
// failure and repeat counters add their own prefix to a ban key.
const (
	userKeyPrefix = "u:"
	ipKeyPrefix   = "ip:"
	failPrefix    = "rl:fail:"
	repeatPrefix  = "rl:bans:"
)

// Store keeps the counters and bans (a store.Store).
type Store interface {
	Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, error)
	ResetCounter(ctx context.Context, key string) error
	PutBan(ctx context.Context, b store.Ban, ttl time.Duration) error
	GetBan(ctx context.Context, key string) (store.Ban, error)
	DeleteBan(ctx context.Context, key string) error
	ListBans(ctx context.Context, limit int) ([]store.Ban, error)
}

// Recorder records audit events (an *audit.Recorder).
type Recorder interface {
	Record(ctx context.Context, ev store.AuditEvent)
}

// Options tune the Regulator; zero fields take the defaults.
type Options struct {
	// MaxFailures failed attempts within Window start a ban. Window is
	// at most Ban (a longer one is shortened to Ban).
	MaxFailures int
	Window      time.Duration
	// Ban is the first ban's length; each further ban of the same subject
	// within RepeatWindow lasts twice as long as the one before, up to
	// MaxBan.
	Ban          time.Duration
	MaxBan       time.Duration
	RepeatWindow time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxFailures <= 0 {
		o.MaxFailures = DefaultMaxFailures
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Ban <= 0 {
		o.Ban = DefaultBan
	}
	if o.MaxBan <= 0 {
		o.MaxBan = DefaultMaxBan
	}
	o.MaxBan = max(o.MaxBan, o.Ban)
	// Failures must be forgotten by the time a ban ends (see Fail).
	o.Window = min(o.Window, o.Ban)
	if o.RepeatWindow <= 0 {
		o.RepeatWindow = DefaultRepeatWindow
	}
	return o
}

// Regulator counts failures and keeps bans. It is safe for concurrent
// use; all its state is in the store.
type Regulator struct {
	st  Store
	rec Recorder
	o   Options
	now func() time.Time
}

// New returns a Regulator over st. rec receives an audit event for every
// ban started; now may be nil (time.Now).
func New(st Store, rec Recorder, o Options, now func() time.Time) *Regulator {
	if now == nil {
		now = time.Now
	}
	return &Regulator{st: st, rec: rec, o: o.withDefaults(), now: now}
}

// Options returns the options in force (defaults filled in).
func (r *Regulator) Options() Options { return r.o }

// subject is one thing failures are counted for.
type subject struct {
	key, kind, display string
}

// UserKey is the ban key of a user name: a hash, so any name typed at the
// login form makes a short key.
func UserKey(name string) string {
	sum := sha256.Sum256([]byte(name))
	return userKeyPrefix + hex.EncodeToString(sum[:16])
}

// IPSubject is what a client address is counted as: the address itself
// for IPv4 (also IPv4-mapped IPv6), its /64 network for IPv6.
func IPSubject(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(ipv6Prefix) // cannot fail for /64 of an IPv6 address
		return p.String()
	}
	return ip.String()
}

// IPKey is the ban key of a client address.
func IPKey(ip netip.Addr) string { return ipKeyPrefix + IPSubject(ip) }

func userSubject(name string) subject {
	return subject{key: UserKey(name), kind: store.BanKindUser, display: clip(name, maxSubjectLen)}
}

func ipSubject(ip netip.Addr) subject {
	return subject{key: IPKey(ip), kind: store.BanKindIP, display: IPSubject(ip)}
}

// subjects lists what an attempt by user from ip counts against: the
// user name unless empty, the address unless unknown.
func subjects(user string, ip netip.Addr) []subject {
	var out []subject
	if user != "" {
		out = append(out, userSubject(user))
	}
	if ip.IsValid() {
		out = append(out, ipSubject(ip))
	}
	return out
}

// Banned returns the ban that holds for user or ip (the one ending last)
// and true, or false when neither is banned. An empty user or an invalid
// ip is not checked. A store error is returned as is: callers refuse the
// attempt (fail closed).
func (r *Regulator) Banned(ctx context.Context, user string, ip netip.Addr) (store.Ban, bool, error) {
	var found store.Ban
	ok := false
	for _, s := range subjects(user, ip) {
		b, err := r.st.GetBan(ctx, s.key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return store.Ban{}, false, fmt.Errorf("regulation: check %s ban: %w", s.kind, err)
		}
		if !ok || b.Until.After(found.Until) {
			found, ok = b, true
		}
	}
	return found, ok, nil
}

// Fail records one failed attempt by user from ip and starts a ban for
// each of them that reached MaxFailures within Window. It returns the
// bans it started.
func (r *Regulator) Fail(ctx context.Context, user string, ip netip.Addr) ([]store.Ban, error) {
	var started []store.Ban
	var errs []error
	for _, s := range subjects(user, ip) {
		n, err := r.st.Incr(ctx, failPrefix+s.key, 1, r.o.Window)
		if err != nil {
			errs = append(errs, fmt.Errorf("regulation: count %s failure: %w", s.kind, err))
			continue
		}
		// Exactly the MaxFailures-th failure starts the ban, so failures
		// racing in from other requests or instances start no second
		// one. Their count expires with the window, which ends before the
		// ban does (Window <= Ban): after a ban, counting starts afresh.
		if n != int64(r.o.MaxFailures) {
			continue
		}
		b, err := r.startBan(ctx, s, n, ip)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		started = append(started, b)
	}
	return started, errors.Join(errs...)
}

// startBan bans s: Ban long, doubled for every earlier ban of s within
// RepeatWindow, at most MaxBan.
func (r *Regulator) startBan(ctx context.Context, s subject, failures int64, ip netip.Addr) (store.Ban, error) {
	level, err := r.st.Incr(ctx, repeatPrefix+s.key, 1, r.o.RepeatWindow)
	if err != nil {
		return store.Ban{}, fmt.Errorf("regulation: count %s bans: %w", s.kind, err)
	}
	d := r.banLength(level)
	now := r.now().UTC()
	b := store.Ban{Key: s.key, Kind: s.kind, Subject: s.display, Failures: failures, Level: int(level), Since: now, Until: now.Add(d)}
	if err := r.st.PutBan(ctx, b, d); err != nil {
		return store.Ban{}, fmt.Errorf("regulation: start %s ban: %w", s.kind, err)
	}
	if r.rec != nil {
		ipText := ""
		if ip.IsValid() {
			ipText = ip.String()
		}
		r.rec.Record(ctx, store.AuditEvent{
			Time: now, Action: audit.BanStarted, Target: s.display, IP: ipText,
			Detail: fmt.Sprintf("%s banned for %s after %d failed attempts (ban %d within %s)", s.kind, d, failures, level, r.o.RepeatWindow),
		})
	}
	return b, nil
}

// banLength is Ban × 2^(level-1), at most MaxBan.
func (r *Regulator) banLength(level int64) time.Duration {
	d := r.o.Ban
	for i := int64(1); i < level && d < r.o.MaxBan; i++ {
		d *= 2
	}
	return min(d, r.o.MaxBan)
}

// Succeed resets user's failure count after a successful sign-in step.
// The address's count is kept: an attacker who owns one account must not
// be able to clear their address's record by signing in with it.
func (r *Regulator) Succeed(ctx context.Context, user string) error {
	if user == "" {
		return nil
	}
	if err := r.st.ResetCounter(ctx, failPrefix+UserKey(user)); err != nil {
		return fmt.Errorf("regulation: reset user failures: %w", err)
	}
	return nil
}

// List returns up to limit active bans, the one ending last first.
func (r *Regulator) List(ctx context.Context, limit int) ([]store.Ban, error) {
	bs, err := r.st.ListBans(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("regulation: list bans: %w", err)
	}
	return bs, nil
}

// ErrNotBanned is returned (wrapping store.ErrNotFound) by Lift when no
// ban matches.
var ErrNotBanned = fmt.Errorf("regulation: no active ban: %w", store.ErrNotFound)

// TargetKeys returns the ban keys target may mean: a ban key itself
// ("u:…", "ip:…"), or an address or prefix (its address key) and, for
// anything else that could be a user name, that user's key.
func TargetKeys(target string) []string {
	target = strings.TrimSpace(target)
	if target == "" {
		return nil
	}
	if (strings.HasPrefix(target, userKeyPrefix) || strings.HasPrefix(target, ipKeyPrefix)) && store.ValidBanKey(target) {
		return []string{target}
	}
	var keys []string
	if ip, err := netip.ParseAddr(target); err == nil {
		keys = append(keys, IPKey(ip))
	} else if p, err := netip.ParsePrefix(target); err == nil {
		keys = append(keys, ipKeyPrefix+p.Masked().String())
	}
	return append(keys, UserKey(target))
}

// Lifter is the part of a Store that Lift uses.
type Lifter interface {
	GetBan(ctx context.Context, key string) (store.Ban, error)
	DeleteBan(ctx context.Context, key string) error
	ResetCounter(ctx context.Context, key string) error
}

// Lift ends the bans target means (see TargetKeys) and clears their
// failure counts, so the subject starts afresh. It returns the bans that
// were active; none is ErrNotBanned. The caller records the audit event
// with its actor.
func Lift(ctx context.Context, st Lifter, target string) ([]store.Ban, error) {
	var lifted []store.Ban
	for _, key := range TargetKeys(target) {
		b, err := st.GetBan(ctx, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return lifted, fmt.Errorf("regulation: lift ban: %w", err)
		default:
			lifted = append(lifted, b)
		}
		if err := st.DeleteBan(ctx, key); err != nil {
			return lifted, fmt.Errorf("regulation: lift ban: %w", err)
		}
		if err := st.ResetCounter(ctx, failPrefix+key); err != nil {
			return lifted, fmt.Errorf("regulation: lift ban: %w", err)
		}
	}
	if len(lifted) == 0 {
		return nil, fmt.Errorf("%w for %q", ErrNotBanned, target)
	}
	return lifted, nil
}

// Lift is the package-level Lift over the Regulator's store.
func (r *Regulator) Lift(ctx context.Context, target string) ([]store.Ban, error) {
	return Lift(ctx, r.st, target)
}

// clip shortens s to at most n bytes of valid UTF-8, marking a cut.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	s = s[:n-len("…")]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
