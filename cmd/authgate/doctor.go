package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ntpclock "github.com/authgate/authgate/gateway/clock"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/control"
	"github.com/authgate/authgate/gateway/drift"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/users"
)

const doctorUsage = "authgate doctor [--config PATH]"

// Bounds of the doctor's checks.
const (
	doctorClockTimeout = 5 * time.Second
	doctorStoreTimeout = 5 * time.Second
	// slowStore is the store round trip above which every sign-in (a few
	// store operations) is noticeably slower.
	slowStore = 100 * time.Millisecond
)

// Severity of one finding.
type severity int

const (
	sevOK   severity = iota
	sevInfo          // not a problem: a check that is off or was skipped
	sevWarn          // a problem to fix
	sevFail          // a problem that breaks sign-ins or the gateway
)

func (s severity) String() string {
	return [...]string{"[ok]  ", "[info]", "[warn]", "[fail]"}[s]
}

// finding is one line of the doctor's report.
type finding struct {
	sev   severity
	topic string
	msg   string
	fix   string
}

// cmdDoctor checks what makes codes fail or the gateway misbehave: the
// config, the server clock against NTP, the store, and the clock drift
// seen in recent failed codes. Each finding that is not OK carries its
// fix. Exit 1 if any is a problem.
func cmdDoctor(ctx context.Context, args []string, now func() time.Time, stdout, stderr io.Writer) error {
	fs := newFlags("doctor", stderr)
	cfgFlag := fs.String("config", "", configFlagHelp)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n", doctorUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path := configPath(*cfgFlag)
	fmt.Fprintf(stdout, "authgate doctor: %s\n", path)
	cfg, fs1 := doctorConfig(path)
	all := fs1
	if cfg != nil {
		all = append(all, doctorClock(ctx, cfg, now))
		st, storeFindings, closeStore := doctorStore(ctx, cfg)
		all = append(all, storeFindings...)
		if st != nil {
			all = append(all, doctorMode(ctx, cfg, st))
			all = append(all, doctorDrift(ctx, cfg, st, now)...)
			closeStore()
		} else {
			if len(storeFindings) > 0 && storeFindings[0].sev == sevOK {
				// The running server holds the embedded store: ask it.
				all = append(all, doctorModeRunning(ctx, cfg, control.NewClient(server.ControlSocketPath(cfg))))
			}
			all = append(all, driftSkipped(storeFindings))
		}
	}
	problems := 0
	for _, f := range all {
		fmt.Fprintf(stdout, "%s %s: %s\n", f.sev, f.topic, f.msg)
		if f.sev != sevOK && f.fix != "" {
			fmt.Fprintf(stdout, "       fix: %s\n", f.fix)
		}
		if f.sev >= sevWarn {
			problems++
		}
	}
	if problems > 0 {
		fmt.Fprintf(stdout, "%d problem(s) found\n", problems)
		return exitCode(1)
	}
	fmt.Fprintln(stdout, "no problems found")
	return nil
}

// doctorConfig loads the config; cfg is nil when it cannot be used.
func doctorConfig(path string) (*config.Config, []finding) {
	rep, err := checkConfigFile(path)
	if err != nil {
		return nil, []finding{{sevFail, "config", err.Error(), "give the right file with --config or $AUTHGATE_CONFIG"}}
	}
	if len(rep.Problems) > 0 {
		var fs []finding
		for _, p := range rep.Problems {
			fs = append(fs, finding{sevFail, "config", p.String(), "correct it in " + path + " (`authgate config check` lists every problem)"})
		}
		return nil, fs
	}
	if len(rep.Warnings) == 0 {
		return rep.Config, []finding{{sevOK, "config", "valid, no warnings", ""}}
	}
	fs := []finding{{sevOK, "config", "valid", ""}}
	for _, w := range rep.Warnings {
		fs = append(fs, finding{sevWarn, "config", w.String(), warningFix(w, path)})
	}
	return rep.Config, fs
}

// warningFix is the fix for a config warning.
func warningFix(w config.Problem, path string) string {
	k := w.Key
	switch {
	case k == "public_url":
		return "serve the gateway over HTTPS (a TLS terminator in front of it) and set an https:// public_url"
	case strings.HasSuffix(k, "insecure_skip_verify"):
		return "give the server's CA certificate in ca_file instead of skipping verification"
	case strings.HasPrefix(k, "routes[") && strings.HasSuffix(k, ".policy"):
		return "set policy: password or two_factor, unless this upstream is meant to be public"
	case strings.HasPrefix(k, "routes[") && strings.HasSuffix(k, ".upstream_tls"):
		return "remove upstream_tls, or use an https:// upstream"
	case k == "two_factor.mode":
		return "set two_factor.mode to on or required (in the config, or on the admin Settings page)"
	case strings.HasPrefix(k, "trusted_proxies["):
		return "list only the addresses of your own reverse proxies"
	}
	where := path
	if w.Line > 0 {
		where = fmt.Sprintf("%s line %d", path, w.Line)
	}
	return fmt.Sprintf("review %s (%s)", k, where)
}

// doctorClock measures the server clock live against time.ntp_servers.
func doctorClock(ctx context.Context, cfg *config.Config, now func() time.Time) finding {
	const topic = "server clock"
	t := cfg.Time
	if len(t.NTPServers) == 0 {
		return finding{sevInfo, topic, "not checked: time.ntp_servers is empty", ntpclock.NotConfiguredHint}
	}
	m := ntpclock.NewMonitor(ntpclock.Options{Servers: t.NTPServers, WarnOver: t.WarnOver, Now: now})
	ctx, cancel := context.WithTimeout(ctx, doctorClockTimeout)
	defer cancel()
	res, err := m.Measure(ctx)
	if err != nil {
		return finding{sevFail, topic, "could not be measured: " + err.Error(), ntpclock.UnreachableHint}
	}
	msg := fmt.Sprintf("%s NTP time (measured against %s, round trip %v)", ntpclock.Describe(res.Offset), res.Server,
		res.RTT.Round(100*time.Microsecond))
	if res.Offset.Abs() > t.WarnOver {
		return finding{sevFail, topic, fmt.Sprintf("%s: more than time.warn_over (%v)", msg, t.WarnOver), ntpclock.Fix()}
	}
	return finding{sevOK, topic, msg, ""}
}

// doctorStore checks that the store answers and how fast. st is the
// opened store for the next checks (nil when it cannot be read here);
// closeStore releases it.
func doctorStore(ctx context.Context, cfg *config.Config) (st store.Store, fs []finding, closeStore func()) {
	const topic = "store"
	ctx, cancel := context.WithTimeout(ctx, doctorStoreTimeout)
	defer cancel()
	noop := func() {}
	if cfg.Store.Driver == config.DriverEmbedded || cfg.Store.Driver == "" {
		sock := server.ControlSocketPath(cfg)
		if _, err := os.Stat(sock); err == nil {
			start := time.Now()
			_, err := control.NewClient(sock).List(ctx)
			rtt := time.Since(start)
			switch {
			case err == nil:
				return nil, []finding{{sevOK, topic, fmt.Sprintf("embedded %s is held by the running server; its control socket answered in %v",
					cfg.Store.Path, rtt.Round(100*time.Microsecond)), ""}}, noop
			case !errors.Is(err, control.ErrUnavailable):
				return nil, []finding{{sevFail, topic, "the running server's control socket answered with an error: " + err.Error(),
					"read the server's log (journalctl -u authgate)"}}, noop
			}
			// Nobody answers: a socket left by a crash; try the file.
		}
		if _, err := os.Stat(cfg.Store.Path); errors.Is(err, os.ErrNotExist) {
			return nil, []finding{{sevInfo, topic, fmt.Sprintf("embedded %s does not exist yet", cfg.Store.Path),
				"it is created when the gateway first starts (authgate serve)"}}, noop
		}
	}
	opened, err := server.OpenStore(ctx, cfg, time.Now)
	switch {
	case errors.Is(err, embedded.ErrLocked):
		return nil, []finding{{sevFail, topic, fmt.Sprintf("%s is locked by another process and the control socket %s does not answer",
			cfg.Store.Path, server.ControlSocketPath(cfg)),
			"if authgate runs, restart it; otherwise find the process holding the file (fuser -v " + cfg.Store.Path + ")"}}, noop
	case err != nil:
		return nil, []finding{{sevFail, topic, err.Error(), storeFix(cfg)}}, noop
	}
	// The first ping after opening may include connecting: time the best
	// of three.
	var best time.Duration
	for i := range 3 {
		start := time.Now()
		if err := opened.Ping(ctx); err != nil {
			_ = opened.Close()
			return nil, []finding{{sevFail, topic, "does not answer: " + err.Error(), storeFix(cfg)}}, noop
		}
		if d := time.Since(start); i == 0 || d < best {
			best = d
		}
	}
	desc := describeStore(cfg)
	closeStore = func() { _ = opened.Close() }
	msg := fmt.Sprintf("%s reachable, round trip %s", desc, roundTrip(best))
	if r, ok := opened.(server.DurabilityReader); ok {
		if d, err := r.Durability(ctx); err != nil {
			fs = append(fs, finding{sevInfo, "redis persistence", "not read: " + err.Error(), "make sure Redis keeps its data: appendonly yes, maxmemory-policy noeviction"})
		} else if ps := d.Problems(); len(ps) > 0 {
			for _, p := range ps {
				fs = append(fs, finding{sevWarn, "redis persistence", p, "it holds the only copy of users, TOTP secrets and the key check: see store.driver in docs/configuration.md and docs/operations.md"})
			}
		} else {
			fs = append(fs, finding{sevOK, "redis persistence", "append-only file on, no eviction", ""})
		}
	}
	if best > slowStore {
		return opened, append([]finding{{sevWarn, topic, msg + fmt.Sprintf(": slow (over %v); every sign-in waits for several round trips", slowStore),
			"run Redis close to the gateway (same host or network), and check its load (redis-cli --latency)"}}, fs...), closeStore
	}
	return opened, append([]finding{{sevOK, topic, msg, ""}}, fs...), closeStore
}

func describeStore(cfg *config.Config) string {
	if cfg.Store.Driver == config.DriverRedis {
		return "redis at " + strings.Join(cfg.Store.Redis.Addrs, ",")
	}
	return "embedded " + cfg.Store.Path
}

func storeFix(cfg *config.Config) string {
	if cfg.Store.Driver == config.DriverRedis {
		return "check that Redis runs and store.redis.addrs, the password (AUTHGATE_REDIS_PASSWORD or password_file) and TLS settings are right"
	}
	return "check that data_dir exists and is writable by the user authgate runs as"
}

// doctorMode says which 2FA mode is in force and where it comes from: the
// value set on the Settings page or with `authgate 2fa mode` wins over
// the file's.
func doctorMode(ctx context.Context, cfg *config.Config, st store.Store) finding {
	const topic = "2fa mode"
	stored, err := st.GetSetting(ctx, settings.KeyMode)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return finding{sevOK, topic, fmt.Sprintf("%s, from two_factor.mode in the config file (nothing set on the Settings page or with `authgate 2fa mode`)", cfg.TwoFactor.Mode), ""}
	case err != nil:
		return finding{sevInfo, topic, "could not be read: " + err.Error(), storeFix(cfg)}
	case stored == cfg.TwoFactor.Mode:
		return finding{sevOK, topic, fmt.Sprintf("%s, set on the Settings page or with `authgate 2fa mode` (the config file agrees)", stored), ""}
	}
	return finding{sevInfo, topic, fmt.Sprintf("%s, set on the Settings page or with `authgate 2fa mode`; it wins over two_factor.mode %s in the config file", stored, cfg.TwoFactor.Mode),
		"change it on the admin Settings page or with `authgate 2fa mode`; editing the file has no effect"}
}

// modeReader is what doctorModeRunning needs of the running server's
// control socket (a *control.Client).
type modeReader interface {
	Settings(ctx context.Context) (users.SettingsInfo, error)
}

// doctorModeRunning is doctorMode for an embedded store the running
// server holds: the server says which mode it enforces and where that
// comes from. A file mode that differs from the one the server loaded
// means the file was edited since the server started.
func doctorModeRunning(ctx context.Context, cfg *config.Config, srv modeReader) finding {
	const topic = "2fa mode"
	ctx, cancel := context.WithTimeout(ctx, doctorStoreTimeout)
	defer cancel()
	info, err := srv.Settings(ctx)
	switch {
	case err != nil:
		return finding{sevInfo, topic, "the running server did not say: " + err.Error(), "read the server's log (journalctl -u authgate)"}
	case info.ModeSource == users.ModeFromSettings && info.Mode == cfg.TwoFactor.Mode:
		return finding{sevOK, topic, fmt.Sprintf("%s, set on the Settings page or with `authgate 2fa mode` (the config file agrees)", info.Mode), ""}
	case info.ModeSource == users.ModeFromSettings:
		return finding{sevInfo, topic, fmt.Sprintf("%s, set on the Settings page or with `authgate 2fa mode`; it wins over two_factor.mode %s in the config file", info.Mode, cfg.TwoFactor.Mode),
			"change it on the admin Settings page or with `authgate 2fa mode`; editing the file has no effect"}
	case info.Mode == cfg.TwoFactor.Mode:
		return finding{sevOK, topic, fmt.Sprintf("%s, from two_factor.mode in the config file (nothing set on the Settings page or with `authgate 2fa mode`)", info.Mode), ""}
	}
	return finding{sevWarn, topic, fmt.Sprintf("the running server enforces %s from the config file it loaded, but the file now says %s", info.Mode, cfg.TwoFactor.Mode),
		"restart the server to apply the file (two_factor.mode changes only at restart), or set the mode on the Settings page"}
}

// doctorDrift reads the clock drift recorded from recent failed codes:
// several users off by the same amount blames the server's clock, one
// user off blames that user's phone.
func doctorDrift(ctx context.Context, cfg *config.Config, st store.Store, now func() time.Time) []finding {
	const topic = "code drift"
	rep, err := drift.Analyze(ctx, st, now(), drift.Options{Period: uint(cfg.TwoFactor.Period)})
	if err != nil {
		return []finding{{sevFail, topic, "could not be read: " + err.Error(), storeFix(cfg)}}
	}
	window := drift.Seconds(int(rep.Window.Seconds()))
	if rep.Users == 0 {
		return []finding{{sevOK, topic, fmt.Sprintf("no failed code in the last %s matched a clock offset", window), ""}}
	}
	var fs []finding
	if rep.ServerLikely {
		fs = append(fs, finding{sevFail, topic,
			fmt.Sprintf("failed codes of %d users agree: the server clock is likely %s (from the last %s)",
				rep.Agreeing, drift.ServerOffsetText(rep.EstimateSeconds), window),
			ntpclock.Fix()})
	}
	for _, u := range rep.Phones() {
		fs = append(fs, finding{sevWarn, topic,
			fmt.Sprintf("user %s: %s", cell(u.Name), drift.PhoneAdvice(u.Steps, rep.Period)),
			"the user turns on automatic date and time on the phone, or resyncs the authenticator's clock on My account (an admin can, with Resync clock in Manage users)"})
	}
	return fs
}

// driftSkipped explains why the drift evidence was not read.
func driftSkipped(store []finding) finding {
	const topic = "code drift"
	if len(store) > 0 && store[0].sev == sevOK {
		// The running server holds the embedded store.
		return finding{sevInfo, topic, "not analysed here: the running server holds the store",
			"see the admin area's Settings page (/.authgate/admin/settings) for the drift estimate"}
	}
	if len(store) > 0 && store[0].sev == sevInfo {
		return finding{sevOK, topic, "no users yet", ""}
	}
	return finding{sevInfo, topic, "not analysed: the store cannot be read", "fix the store first (above)"}
}

// roundTrip shows a latency to the microsecond.
func roundTrip(d time.Duration) string {
	if d < time.Microsecond {
		return "under 1µs"
	}
	return d.Round(time.Microsecond).String()
}

// effectiveMode says which 2FA mode is in force for cfg and where it
// comes from, as doctor does: asked of the running server, read from the
// store, or, when neither can be read here, the file's value with the
// rule that a stored one would win.
func effectiveMode(ctx context.Context, cfg *config.Config) string {
	st, found, closeStore := doctorStore(ctx, cfg)
	switch {
	case st != nil:
		defer closeStore()
		return doctorMode(ctx, cfg, st).msg
	case len(found) > 0 && found[0].sev == sevOK:
		return doctorModeRunning(ctx, cfg, control.NewClient(server.ControlSocketPath(cfg))).msg
	}
	why := "it could not be read here"
	if len(found) > 0 {
		why = found[0].msg
	}
	return fmt.Sprintf("%s from two_factor.mode in the config file, unless one was set on the Settings page or with `authgate 2fa mode`, which wins (the store: %s)", cfg.TwoFactor.Mode, why)
}
