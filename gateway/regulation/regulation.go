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
	// DefaultMaxPerSession and DefaultSessionWindow: five tries per
	// sign-in, counted for as long as a half-finished sign-in lives.
	DefaultMaxPerSession = 5
	DefaultSessionWindow = 10 * time.Minute
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
	startPrefix   = "rl:start:"
	sessionPrefix = "rl:sess:"
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

// Observer learns of every proof checked (a *metrics.Metrics). Its
// method must not block.
type Observer interface {
	ProofChecked(proof string)
}

// Options tune the Regulator; zero fields take the defaults.
type Options struct {
	// MaxPerSession failed proofs within SessionWindow spend a session
	// (the caller ends it): one sign-in gets this many tries.
	MaxPerSession int
	SessionWindow time.Duration
	// Observer, if set, is told of every proof checked.
	Observer Observer
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
	if o.MaxPerSession <= 0 {
		o.MaxPerSession = DefaultMaxPerSession
	}
	if o.SessionWindow <= 0 {
		o.SessionWindow = DefaultSessionWindow
	}
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
	obs Observer
	o   Options
	now func() time.Time
}

// New returns a Regulator over st. rec receives an audit event for every
// ban started; now may be nil (time.Now).
func New(st Store, rec Recorder, o Options, now func() time.Time) *Regulator {
	if now == nil {
		now = time.Now
	}
	return &Regulator{st: st, rec: rec, obs: o.Observer, o: o.withDefaults(), now: now}
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

// Claim says whom one proof attempt (a password, a TOTP code, a
// recovery code) counts against.
type Claim struct {
	// User is the account name as given ("" when there is none yet).
	User string
	// IP is the client's address (invalid when unknown).
	IP netip.Addr
	// Session is the id hash of the session the proof is made in (""
	// at the password step). A session may fail at most
	// Options.MaxPerSession proofs; then it is spent.
	Session string
}

// BannedError refuses an attempt: Ban holds for the user or the address
// (or their failures already passed the limit in this window).
type BannedError struct {
	Ban store.Ban
	// Started: this refusal started the ban (count it as one).
	Started bool
}

func (e *BannedError) Error() string {
	return fmt.Sprintf("regulation: %s is banned until %s", e.Ban.Kind, e.Ban.Until.Format(time.RFC3339))
}

// ErrSessionSpent refuses an attempt in a session that already failed
// MaxPerSession proofs: the caller ends the session.
var ErrSessionSpent = errors.New("regulation: too many failed attempts in this session")

// Attempt is one reserved proof attempt. The caller checks the proof
// only after Reserve returned it, then calls exactly one of Failed or
// Passed.
type Attempt struct {
	r     *Regulator
	claim Claim
	// counts are the counter values this reservation made, by key.
	counts []reserved
	proof  string
}

type reserved struct {
	s      subject // zero for the session's counter
	key    string
	n      int64
	limit  int64
	window time.Duration
}

// Reserve reserves one proof attempt before the proof is looked at, so
// that any number of attempts arriving at once are checked at most up to
// the limits: every attempt first adds one to the counters of its user,
// address and session (atomic increments in the shared store), and is
// refused when a count passes its limit. The check is the count, not a
// ban record, so a ban that could not be written still refuses. proof
// names what is being proved, for the observer ("password", "totp",
// "recovery_code").
//
// It returns a *BannedError when the user or the address is banned or
// over its limit, ErrSessionSpent when the session is, and any store
// error as is: the caller refuses the attempt in every case (fail
// closed) and never checks the proof.
func (r *Regulator) Reserve(ctx context.Context, proof string, c Claim) (*Attempt, error) {
	if b, banned, err := r.Banned(ctx, c.User, c.IP); err != nil {
		return nil, err
	} else if banned {
		return nil, &BannedError{Ban: b}
	}
	a := &Attempt{r: r, claim: c, proof: proof}
	if c.Session != "" {
		key := sessionPrefix + c.Session
		n, err := r.st.Incr(ctx, key, 1, r.o.SessionWindow)
		if err != nil {
			return nil, fmt.Errorf("regulation: reserve session attempt: %w", err)
		}
		a.counts = append(a.counts, reserved{key: key, n: n, limit: int64(r.o.MaxPerSession), window: r.o.SessionWindow})
		if n > int64(r.o.MaxPerSession) {
			return nil, ErrSessionSpent
		}
	}
	for _, s := range subjects(c.User, c.IP) {
		key := failPrefix + s.key
		n, err := r.st.Incr(ctx, key, 1, r.o.Window)
		if err != nil {
			return nil, fmt.Errorf("regulation: reserve %s attempt: %w", s.kind, err)
		}
		a.counts = append(a.counts, reserved{s: s, key: key, n: n, limit: int64(r.o.MaxFailures), window: r.o.Window})
		if n > int64(r.o.MaxFailures) {
			b, isNew, err := r.ensureBan(ctx, s, n, c.IP)
			if err != nil {
				return nil, err
			}
			return nil, &BannedError{Ban: b, Started: isNew}
		}
	}
	return a, nil
}

// Failed records that the reserved proof was wrong: the reservation
// stays counted. A user or address whose count reached the limit is
// banned; the bans started are returned.
func (a *Attempt) Failed(ctx context.Context) ([]store.Ban, error) {
	a.r.checked(a.proof)
	var started []store.Ban
	var errs []error
	for _, c := range a.counts {
		if c.s.key == "" || c.n < c.limit {
			continue
		}
		b, isNew, err := a.r.ensureBan(ctx, c.s, c.n, a.claim.IP)
		switch {
		case err != nil:
			errs = append(errs, err)
		case isNew:
			started = append(started, b)
		}
	}
	return started, errors.Join(errs...)
}

// Passed records that the reserved proof was right: the reservation is
// given back, so only failures count towards the limits.
func (a *Attempt) Passed(ctx context.Context) error {
	a.r.checked(a.proof)
	return a.release(ctx)
}

// Cancel gives the reservation back without a check having happened
// (the gateway was too busy to hash, or could not read what to check
// against).
func (a *Attempt) Cancel(ctx context.Context) error { return a.release(ctx) }

func (a *Attempt) release(ctx context.Context) error {
	var errs []error
	for _, c := range a.counts {
		n, err := a.r.st.Incr(ctx, c.key, -1, c.window)
		if err == nil && n < 0 {
			// The window ended between reserve and release: nothing to
			// give back.
			err = a.r.st.ResetCounter(ctx, c.key)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("regulation: release attempt: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Fail records one failed attempt by user from ip without a proof being
// checked (a malformed request counts as a failure): Reserve followed by
// Failed. It returns the bans started.
func (r *Regulator) Fail(ctx context.Context, user string, ip netip.Addr) ([]store.Ban, error) {
	a, err := r.Reserve(ctx, "", Claim{User: user, IP: ip})
	if be, ok := errors.AsType[*BannedError](err); ok {
		if be.Started {
			return []store.Ban{be.Ban}, nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return a.Failed(ctx)
}

// ensureBan makes sure subject s, whose failures reached the limit, is
// banned: the ban already there, or one started now. Of every request
// that finds no ban only the first in the window starts one (an atomic
// increment decides), so a burst of refusals starts one ban, not many;
// if that one write fails, the count keeps refusing for the rest of the
// window. isNew says whether this call started the ban.
func (r *Regulator) ensureBan(ctx context.Context, s subject, failures int64, ip netip.Addr) (b store.Ban, isNew bool, err error) {
	b, err = r.st.GetBan(ctx, s.key)
	if err == nil {
		return b, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Ban{}, false, fmt.Errorf("regulation: check %s ban: %w", s.kind, err)
	}
	first, err := r.st.Incr(ctx, startPrefix+s.key, 1, r.o.Window)
	if err != nil {
		return store.Ban{}, false, fmt.Errorf("regulation: start %s ban: %w", s.kind, err)
	}
	if first != 1 {
		// Another request started it (or failed to write it): the count
		// refuses for the rest of the window, shown as a ban that long.
		now := r.now().UTC()
		return store.Ban{Key: s.key, Kind: s.kind, Subject: s.display, Failures: failures, Since: now, Until: now.Add(r.o.Window)}, false, nil
	}
	b, err = r.startBan(ctx, s, failures, ip)
	return b, err == nil, err
}

func (r *Regulator) checked(proof string) {
	if r.obs != nil && proof != "" {
		r.obs.ProofChecked(proof)
	}
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
		for _, counter := range []string{failPrefix + key, startPrefix + key} {
			if err := st.ResetCounter(ctx, counter); err != nil {
				return lifted, fmt.Errorf("regulation: lift ban: %w", err)
			}
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
