package drift

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// MinAgreeingUsers is how many different users' evidence must point to the
// same offset (±1 step) before the server's clock is blamed. Two, not
// three: evidence needs a correct code outside the window, so two phones
// independently off by the same half minute to ten minutes within a day
// is rare, while a server clock that is off fails every user; authgate
// guards small panels with a handful of admins, where waiting for a third
// user means the server is never named. The page shows how many agree, so
// an admin can weigh it.
const MinAgreeingUsers = 2

// DefaultWindow is how far back evidence counts.
const DefaultWindow = 24 * time.Hour

// UserLister pages through users (a store.Store).
type UserLister interface {
	ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error)
}

// Options tune the analysis. Zero values take the defaults.
type Options struct {
	// Window: observations older than this are ignored (default 24 h).
	Window time.Duration
	// Period is the TOTP period in seconds (default 30).
	Period uint
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Period == 0 {
		o.Period = 30
	}
	return o
}

// Report is what the evidence says.
type Report struct {
	Window time.Duration
	Period uint
	// Users is how many users have evidence in the window.
	Users int
	// ServerLikely: at least MinAgreeingUsers users' codes are off by the
	// same amount (±1 step), so the server's clock is the likely culprit.
	ServerLikely bool
	// EstimateSteps is the median offset of the agreeing users' codes
	// (positive: their codes are ahead of the server, i.e. the server
	// clock is behind).
	EstimateSteps int
	// EstimateSeconds is the server clock's estimated error: positive
	// when it is ahead of true time (= -EstimateSteps × Period).
	EstimateSeconds int
	// Agreeing is how many users support the estimate.
	Agreeing int
	// PerUser has one entry per user with evidence, by name.
	PerUser []UserDrift
}

// UserDrift is one user's evidence.
type UserDrift struct {
	Name string
	// Steps is the median offset of the user's observations in the window
	// (positive: the device is ahead).
	Steps int
	// Seen are the observations in the window, oldest first.
	Seen []store.DriftObservation
	// Server: the user agrees with the server estimate, so the server's
	// clock, not the phone, explains the failed codes.
	Server bool
}

// Analyze reads every user (a page at a time) and analyses their
// evidence at now.
func Analyze(ctx context.Context, users UserLister, now time.Time, o Options) (Report, error) {
	const page = 500
	var all []store.User
	after := ""
	for {
		list, err := users.ListUsers(ctx, store.ListOptions{After: after, Limit: page})
		if err != nil {
			return Report{}, fmt.Errorf("drift: list users: %w", err)
		}
		for _, u := range list {
			if len(u.DriftSeen) > 0 {
				all = append(all, u)
			}
		}
		if len(list) < page {
			break
		}
		after = list[len(list)-1].Name
	}
	return AnalyzeUsers(all, now, o), nil
}

// AnalyzeUsers analyses the given users' evidence at now.
func AnalyzeUsers(users []store.User, now time.Time, o Options) Report {
	o = o.withDefaults()
	rep := Report{Window: o.Window, Period: o.Period}
	from := now.Add(-o.Window)
	for _, u := range users {
		var seen []store.DriftObservation
		for _, ob := range u.DriftSeen {
			if ob.At.After(from) && !ob.At.After(now) {
				seen = append(seen, ob)
			}
		}
		if len(seen) == 0 {
			continue
		}
		steps := make([]int, len(seen))
		for i, ob := range seen {
			steps[i] = ob.Steps
		}
		rep.PerUser = append(rep.PerUser, UserDrift{Name: u.Name, Steps: median(steps), Seen: seen})
	}
	slices.SortFunc(rep.PerUser, func(a, b UserDrift) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	rep.Users = len(rep.PerUser)

	// The offset most users agree with (±1 step); ties go to the smaller
	// offset, then the earlier one.
	bestN, best := 0, 0
	for _, cand := range rep.PerUser {
		n := 0
		for _, u := range rep.PerUser {
			if abs(u.Steps-cand.Steps) <= 1 {
				n++
			}
		}
		if n > bestN || n == bestN && (abs(cand.Steps) < abs(best) || abs(cand.Steps) == abs(best) && cand.Steps < best) {
			bestN, best = n, cand.Steps
		}
	}
	if bestN < MinAgreeingUsers {
		return rep
	}
	var agree []int
	for i := range rep.PerUser {
		if abs(rep.PerUser[i].Steps-best) <= 1 {
			rep.PerUser[i].Server = true
			agree = append(agree, rep.PerUser[i].Steps)
		}
	}
	rep.ServerLikely = true
	rep.Agreeing = len(agree)
	rep.EstimateSteps = median(agree)
	rep.EstimateSeconds = -rep.EstimateSteps * int(o.Period)
	return rep
}

// User returns the named user's evidence.
func (r Report) User(name string) (UserDrift, bool) {
	i, ok := slices.BinarySearchFunc(r.PerUser, name, func(u UserDrift, n string) int {
		switch {
		case u.Name < n:
			return -1
		case u.Name > n:
			return 1
		}
		return 0
	})
	if !ok {
		return UserDrift{}, false
	}
	return r.PerUser[i], true
}

// Phones returns the users whose own device is the likely culprit.
func (r Report) Phones() []UserDrift {
	var out []UserDrift
	for _, u := range r.PerUser {
		if !u.Server {
			out = append(out, u)
		}
	}
	return out
}

// Advice is the verdict for one user's evidence, for the admin.
func (r Report) Advice(u UserDrift) string {
	if u.Server {
		return fmt.Sprintf("matches the server clock, which is likely %s: fix the server clock, not the phone", ServerOffsetText(r.EstimateSeconds))
	}
	return PhoneAdvice(u.Steps, r.Period)
}

// PhoneAdvice tells an admin what to do about a phone whose codes are
// steps time steps off: "phone clock ~90 s ahead: enable automatic time on
// the phone".
func PhoneAdvice(steps int, period uint) string {
	if steps == 0 {
		return "phone clock matches the server"
	}
	return "phone clock " + OffsetText(steps*int(period)) + ": enable automatic time on the phone"
}

// OffsetText describes a device offset in seconds (positive: ahead):
// "~90 s ahead", "~5 min behind".
func OffsetText(seconds int) string {
	switch {
	case seconds > 0:
		return "~" + Seconds(seconds) + " ahead"
	case seconds < 0:
		return "~" + Seconds(-seconds) + " behind"
	}
	return "on time"
}

// ServerOffsetText describes the server clock's error (positive: ahead).
func ServerOffsetText(seconds int) string { return OffsetText(seconds) }

// StepsText shows an offset in steps with its duration: "+3 steps (90 s)".
func StepsText(steps int, period uint) string {
	unit := "steps"
	if abs(steps) == 1 {
		unit = "step"
	}
	return fmt.Sprintf("%+d %s (%s)", steps, unit, Seconds(abs(steps)*int(period)))
}

// Seconds renders a non-negative number of seconds for people: "90 s",
// "5 min", "2 h".
func Seconds(s int) string {
	switch {
	case s < 120:
		return fmt.Sprintf("%d s", s)
	case s < 2*3600:
		return fmt.Sprintf("%d min", (s+30)/60)
	}
	return fmt.Sprintf("%d h", (s+1800)/3600)
}

// median returns the lower median of xs (len > 0).
func median(xs []int) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
