package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// upstreamServer is bench/upstream: the fixed-size body and the
// connection counter.
type upstreamServer struct {
	p         *proc
	addr      string // serving host:port
	statsAddr string
	body      []byte // what it serves, fetched from it directly
}

func startUpstream(ctx context.Context, l *launcher, bin string, bodySize int) (*upstreamServer, error) {
	p, err := l.start("upstream", serverCPU, nil, nil, bin, "-body", strconv.Itoa(bodySize))
	if err != nil {
		return nil, err
	}
	line, err := p.waitLine(ctx, "listening ", 10*time.Second)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(line) // listening ADDR stats ADDR
	if len(f) != 4 {
		return nil, p.failure(fmt.Errorf("unexpected line %q", line))
	}
	u := &upstreamServer{p: p, addr: f[1], statsAddr: f[3]}
	res, err := http.Get("http://" + u.addr + "/")
	if err != nil {
		return nil, p.failure(err)
	}
	defer res.Body.Close()
	u.body, err = readAllLimit(res.Body, bodySize+1)
	if err != nil || res.StatusCode != http.StatusOK || len(u.body) != bodySize {
		return nil, p.failure(fmt.Errorf("direct GET: status %d, %d bytes, %v", res.StatusCode, len(u.body), err))
	}
	return u, nil
}

// upstreamStats mirrors bench/upstream's Stats.
type upstreamStats struct {
	NewConns int64 `json:"new_conns"`
	Requests int64 `json:"requests"`
}

func (u *upstreamServer) stats() (upstreamStats, error) {
	var s upstreamStats
	res, err := statsClient.Get("http://" + u.statsAddr + "/stats")
	if err != nil {
		return s, u.p.failure(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return s, u.p.failure(err)
	}
	return s, nil
}

var statsClient = &http.Client{Timeout: 5 * time.Second}

// startBareProxy runs bench/bareproxy in front of the upstream: candBare
// with -style plain, candBareTuned with -style tuned, both with the
// allocation stats listener. A process that started is returned even with
// an error, to be stopped.
func startBareProxy(ctx context.Context, l *launcher, bin string, up *upstreamServer, name string) (*candidate, error) {
	style := "plain"
	if name == candBareTuned {
		style = "tuned"
	}
	p, err := l.start(name, serverCPU, nil, nil, bin, "-upstream", "http://"+up.addr, "-style", style, "-stats", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &candidate{name: name, main: p, cpuProcs: []*proc{p}}
	line, err := p.waitLine(ctx, "listening ", 10*time.Second)
	if err != nil {
		return c, err
	}
	c.addr = strings.TrimPrefix(line, "listening ")
	// Printed before the listening line.
	line, err = p.waitLine(ctx, "stats ", time.Second)
	if err != nil {
		return c, err
	}
	c.alloc = &allocSource{url: "http://" + strings.TrimPrefix(line, "stats ") + "/stats"}
	if _, err := c.alloc.read(); err != nil {
		return c, p.failure(err)
	}
	return c, nil
}

var nginxConf = template.Must(template.New("nginx").Parse(`# Written by the authgate benchmark: nginx as a plain reverse proxy.
daemon off;
master_process on;
worker_processes {{.Workers}};
worker_rlimit_nofile 65536;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;

events {
    worker_connections 8192;
}

http {
    {{if .AccessLog}}access_log {{.Dir}}/access.log;{{else}}access_log off;{{end}}
    client_body_temp_path {{.Dir}}/tmp/body;
    proxy_temp_path {{.Dir}}/tmp/proxy;
    fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
    uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
    scgi_temp_path {{.Dir}}/tmp/scgi;
    # Client keep-alive as long as the Go servers keep it.
    keepalive_timeout 120s;
    keepalive_requests 10000000;

{{- if .Auth}}
    # authgate, asked about every request (auth_request), over kept
    # connections as configs/nginx-auth-request.conf does.
    upstream authgate {
        server {{.Auth}};
        keepalive 1024;
        keepalive_requests 10000000;
        keepalive_timeout 90s;
    }
{{- end}}

    upstream panel {
        server {{.Upstream}};
        # Idle keep-alive connections to the upstream, as many as
        # authgate's MaxIdleConnsPerHost.
        keepalive 1024;
        keepalive_requests 10000000;
        keepalive_timeout 90s;
    }

    server {
        listen {{.Listen}};
{{- if .Auth}}
        # The forward-auth subrequest, as configs/nginx-auth-request.conf.
        location = /.authgate/auth {
            internal;
            proxy_pass http://authgate;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Forwarded-Method $request_method;
            proxy_set_header X-Forwarded-For $remote_addr;
        }
{{- end}}
        location / {
{{- if .Auth}}
            auth_request /.authgate/auth;
            auth_request_set $authgate_user $upstream_http_remote_user;
            proxy_set_header Remote-User $authgate_user;
{{- end}}
            proxy_pass http://panel;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }
    }
}
`))

// startNginx writes the config and runs nginx in the foreground, as the
// candidate name: candNginx, or candAuthRequest asking the authgate at
// auth (host:port) about every request.
func startNginx(ctx context.Context, l *launcher, bin, name string, up *upstreamServer, auth string, pinned, accessLog bool) (*candidate, error) {
	dir := filepath.Join(l.dir, name)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	// The workers run as nobody: they must reach their temp dirs.
	if err := os.Chmod(l.dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	workers := "1"
	if !pinned {
		workers = "auto"
	}
	var b strings.Builder
	err = nginxConf.Execute(&b, map[string]any{
		"Dir": dir, "Workers": workers, "Upstream": up.addr,
		"Listen": "127.0.0.1:" + strconv.Itoa(port), "AccessLog": accessLog, "Auth": auth,
	})
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	p, err := l.start(name, serverCPU, nil, nil, bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := p.waitReady(ctx, 10*time.Second, func() error { return tcpReady(addr) }); err != nil {
		return nil, err
	}
	return &candidate{name: name, addr: addr, main: p, cpuProcs: []*proc{p}}, nil
}

// redisServer is the harness's own redis-server (never the one on 6379).
type redisServer struct {
	p    *proc
	addr string
}

func startRedis(ctx context.Context, l *launcher, bin string, aof bool) (*redisServer, error) {
	dir := filepath.Join(l.dir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	appendonly := "no"
	if aof {
		appendonly = "yes"
	}
	var lastErr error
	for range 5 { // another process may take the free port first
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := l.start("redis", serverCPU, nil, nil, bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", appendonly, "--daemonize", "no", "--logfile", "")
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		lastErr = p.waitReady(ctx, 10*time.Second, func() error { return redisPing(addr) })
		if lastErr == nil {
			return &redisServer{p: p, addr: addr}, nil
		}
		p.stop(time.Second)
	}
	return nil, lastErr
}

// redisPing sends PING over a fresh connection and wants +PONG.
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
