package templates

import (
	"strings"
	"testing"
)

func TestClockBlock(t *testing.T) {
	pages := mustPages(t)
	fixes := []ClockFix{{Platform: "systemd (systemd-timesyncd)", Command: "sudo timedatectl set-ntp true"}}
	tests := []struct {
		name    string
		clock   ClockStatus
		want    []string
		notWant []string
	}{
		{
			name:    "not configured",
			clock:   ClockStatus{},
			want:    []string{`<h2 id="clock-heading">Server clock</h2>`, "not checked", "<code>time.ntp_servers</code>"},
			notWant: []string{"clock-warning", "in sync"},
		},
		{
			name: "in sync",
			clock: ClockStatus{Configured: true, Servers: []string{"pool.ntp.org"}, Measured: true, Offset: "12ms ahead",
				Server: "pool.ntp.org", At: "2026-03-14 09:00 UTC", RTT: "20ms", WarnOver: "5s"},
			want:    []string{`<span class="badge on">in sync</span>`, "<strong>12ms ahead</strong> NTP time", "pool.ntp.org at 2026-03-14 09:00 UTC"},
			notWant: []string{"clock-warning", "not checked", "clock-error"},
		},
		{
			name: "warning",
			clock: ClockStatus{Configured: true, Servers: []string{"a", "b"}, Measured: true, Offset: "7s behind", Server: "a",
				At: "x", RTT: "1ms", WarnOver: "5s", Warning: true, Fixes: fixes},
			want: []string{`<span class="badge warn">clock off</span>`, `id="clock-warning"`, "Users' codes fail",
				"systemd (systemd-timesyncd): <code>sudo timedatectl set-ntp true</code>", "<code>a</code>, <code>b</code>"},
			notWant: []string{"in sync"},
		},
		{
			name: "never measured",
			clock: ClockStatus{Configured: true, Servers: []string{"a"}, Error: `a: no answer in time <b>`,
				Hint: "allow outgoing UDP port 123"},
			want:    []string{"not measured", "a: no answer in time &lt;b&gt;", "allow outgoing UDP port 123"},
			notWant: []string{"clock-offset", "clock-warning"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := render(t, pages, PageAdminSettings, AdminSettingsPage{Common: common("Settings"), Clock: tt.clock})
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("unexpected %q", w)
				}
			}
		})
	}
}
