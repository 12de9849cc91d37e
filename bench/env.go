package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// tools are the external programs the benchmark runs, with the Debian
// package that provides each.
type tools struct {
	wrk, nginx, redisServer, taskset, goBin string
}

// findTools locates every program and lists all missing ones at once.
func findTools(needTaskset bool) (tools, error) {
	var t tools
	var missing []string
	look := func(dst *string, name, pkg string, extra ...string) {
		if p, err := exec.LookPath(name); err == nil {
			*dst = p
			return
		}
		for _, p := range extra {
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				*dst = p
				return
			}
		}
		missing = append(missing, fmt.Sprintf("  %-13s (Debian package %s)", name, pkg))
	}
	look(&t.wrk, "wrk", "wrk")
	look(&t.nginx, "nginx", "nginx", "/usr/sbin/nginx")
	look(&t.redisServer, "redis-server", "redis-server")
	if needTaskset {
		look(&t.taskset, "taskset", "util-linux")
	}
	look(&t.goBin, "go", "Go 1.26 from go.dev", "/usr/local/go/bin/go")
	if len(missing) > 0 {
		return t, fmt.Errorf("missing programs:\n%s\ninstall them, e.g. apt-get install -y wrk nginx redis-server util-linux", strings.Join(missing, "\n"))
	}
	return t, nil
}

// moduleRoot walks up from the working directory to the go.mod of
// authgate.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/authgate/authgate\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark inside the authgate repository (no go.mod of github.com/authgate/authgate above the working directory)")
		}
		dir = parent
	}
}

// raiseFileLimit lifts the soft open-files limit to the hard one, for
// this process and every child (wrk -c1000, the flood, the servers).
func raiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return rl.Cur, nil
}

// pinSelf moves every thread of this process to cpu (the load
// generator's CPU) and makes the Go scheduler use one thread.
func pinSelf(taskset string, cpu int) error {
	out, err := exec.Command(taskset, "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %d (self): %w: %s", cpu, err, out)
	}
	runtime.GOMAXPROCS(1)
	return nil
}

// clockTicks returns USER_HZ as `getconf CLK_TCK` reports it.
func clockTicks() (int64, error) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 0, fmt.Errorf("getconf CLK_TCK: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("getconf CLK_TCK: unexpected %q", out)
	}
	return n, nil
}

// machine describes where a run happened, for the report.
type machine struct {
	NumCPU                            int
	CPUModel, Kernel                  string
	Go, Nginx, Redis, Wrk, MemTotalMB string
}

func describeMachine(t tools) machine {
	m := machine{NumCPU: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if kb, err := meminfoKB("MemTotal"); err == nil {
		m.MemTotalMB = strconv.FormatInt(kb/1024, 10)
	}
	m.Go = firstLine(exec.Command(t.goBin, "version"))
	m.Nginx = strings.TrimPrefix(firstLine(exec.Command(t.nginx, "-v")), "nginx version: ")
	m.Redis, _, _ = strings.Cut(firstLine(exec.Command(t.redisServer, "--version")), " sha=")
	m.Wrk, _, _ = strings.Cut(firstLine(exec.Command(t.wrk, "-v")), " Copyright")
	return m
}

// firstLine runs cmd and returns the first line of its combined output
// (wrk -v exits 1 after printing its version, so the exit status is
// ignored).
func firstLine(cmd *exec.Cmd) string {
	out, _ := cmd.CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

func meminfoKB(key string) (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/meminfo: no %s", key)
}
