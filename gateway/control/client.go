package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
)

// ErrUnavailable means the control socket could not be reached: the
// server is not running, or runs with another data directory.
var ErrUnavailable = errors.New("control: socket unavailable")

// clientTimeout is a backstop for a server that accepts but never answers;
// callers bound operations with their context.
const clientTimeout = 10 * time.Minute

// Client implements users.Admin by calling a running server over its
// control socket. Its errors carry the server's message unchanged and
// match what the users.Service's match: the sentinels (users.ErrInvalid,
// users.ErrLastAdmin, store.ErrExists, store.ErrNotFound,
// store.ErrConflict) with errors.Is, and *users.InvalidError and
// *users.UnknownUsersError with errors.As. An unreachable socket gives
// ErrUnavailable.
type Client struct {
	path string
	http *http.Client
}

var _ users.Admin = (*Client)(nil)

// NewClient returns a Client for the control socket at socketPath. It does
// not connect until the first call.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		// No proxy: the environment's HTTP_PROXY must never see this traffic.
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns:    1,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{path: socketPath, http: &http.Client{Transport: tr, Timeout: clientTimeout}}
}

// Add implements users.Admin.
func (c *Client) Add(ctx context.Context, name, passwordHash, role string, groups []string) error {
	return c.call(ctx, http.MethodPost, pathAdd, addRequest{
		Name: name, PasswordHash: passwordHash, Role: role, Groups: groups,
	}, &okResponse{}, nil)
}

// SetPassword implements users.Admin.
func (c *Client) SetPassword(ctx context.Context, name, passwordHash string) error {
	return c.call(ctx, http.MethodPost, pathSetPassword, setPasswordRequest{
		Name: name, PasswordHash: passwordHash,
	}, &okResponse{}, nil)
}

// Delete implements users.Admin.
func (c *Client) Delete(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodPost, pathDelete, deleteRequest{Name: name}, &okResponse{}, nil)
}

// List implements users.Admin.
func (c *Client) List(ctx context.Context) ([]users.UserInfo, error) {
	var resp listResponse
	if err := c.call(ctx, http.MethodGet, pathList, nil, &resp, nil); err != nil {
		return nil, err
	}
	return resp.Users, nil
}

// Import implements users.Admin. After a failure part-way, the result still
// reports what the server did.
func (c *Client) Import(ctx context.Context, entries []users.ImportEntry) (users.ImportResult, error) {
	if entries == nil {
		entries = []users.ImportEntry{}
	}
	var resp importResponse
	var partial users.ImportResult
	if err := c.call(ctx, http.MethodPost, pathImport, importRequest{Entries: entries}, &resp, &partial); err != nil {
		return partial, err
	}
	return resp.Result, nil
}

// Page implements users.Admin.
func (c *Client) Page(ctx context.Context, f users.Filter) (users.UserPage, error) {
	var resp users.UserPage
	if err := c.call(ctx, http.MethodPost, pathPage, pageRequest{Filter: f}, &resp, nil); err != nil {
		return users.UserPage{}, err
	}
	return resp, nil
}

// DisableTwoFactor implements users.Admin.
func (c *Client) DisableTwoFactor(ctx context.Context, names []string) ([]string, error) {
	if names == nil {
		names = []string{}
	}
	var resp namesResponse
	if err := c.call(ctx, http.MethodPost, pathDisable2FA, namesRequest{Names: names}, &resp, nil); err != nil {
		return nil, err
	}
	return resp.Names, nil
}

// ResetPassword implements users.Admin.
func (c *Client) ResetPassword(ctx context.Context, name, passwordHash string) error {
	return c.call(ctx, http.MethodPost, pathResetPass, setPasswordRequest{
		Name: name, PasswordHash: passwordHash,
	}, &okResponse{}, nil)
}

// SetRole implements users.Admin.
func (c *Client) SetRole(ctx context.Context, name, role string) error {
	return c.call(ctx, http.MethodPost, pathSetRole, roleRequest{Name: name, Role: role}, &okResponse{}, nil)
}

// Sessions implements users.Admin.
func (c *Client) Sessions(ctx context.Context, name string) ([]users.SessionInfo, error) {
	var resp sessionsResponse
	if err := c.call(ctx, http.MethodPost, pathSessions, nameRequest{Name: name}, &resp, nil); err != nil {
		return nil, err
	}
	return resp.Sessions, nil
}

// RevokeSessions implements users.Admin.
func (c *Client) RevokeSessions(ctx context.Context, name string) (int, error) {
	var resp countResponse
	if err := c.call(ctx, http.MethodPost, pathRevoke, nameRequest{Name: name}, &resp, nil); err != nil {
		return 0, err
	}
	return resp.Count, nil
}

// Settings implements users.Admin.
func (c *Client) Settings(ctx context.Context) (users.SettingsInfo, error) {
	var resp users.SettingsInfo
	if err := c.call(ctx, http.MethodGet, pathSettings, nil, &resp, nil); err != nil {
		return users.SettingsInfo{}, err
	}
	return resp, nil
}

// SetMode implements users.Admin.
func (c *Client) SetMode(ctx context.Context, mode string) error {
	return c.call(ctx, http.MethodPost, pathSetMode, modeRequest{Mode: mode}, &okResponse{}, nil)
}

// SetIssuer implements users.Admin.
func (c *Client) SetIssuer(ctx context.Context, issuer string) error {
	return c.call(ctx, http.MethodPost, pathSetIssuer, issuerRequest{Issuer: issuer}, &okResponse{}, nil)
}

// Audit implements users.Admin.
func (c *Client) Audit(ctx context.Context, view users.AuditView, since time.Time, limit int) ([]store.AuditEvent, error) {
	var resp auditResponse
	if err := c.call(ctx, http.MethodPost, pathAudit, auditRequest{View: view, Since: since, Limit: limit}, &resp, nil); err != nil {
		return nil, err
	}
	return resp.Events, nil
}

// Bans implements users.Admin.
func (c *Client) Bans(ctx context.Context) ([]users.BanInfo, error) {
	var resp bansResponse
	if err := c.call(ctx, http.MethodGet, pathBans, nil, &resp, nil); err != nil {
		return nil, err
	}
	return resp.Bans, nil
}

// LiftBan implements users.Admin.
func (c *Client) LiftBan(ctx context.Context, target string) ([]users.BanInfo, error) {
	var resp bansResponse
	if err := c.call(ctx, http.MethodPost, pathLiftBan, liftBanRequest{Target: target}, &resp, nil); err != nil {
		return nil, err
	}
	return resp.Bans, nil
}

func (c *Client) call(ctx context.Context, method, path string, body, out any, partial *users.ImportResult) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("control: encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://authgate"+path, rd)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRequestBody+1))
	if err != nil {
		return fmt.Errorf("control: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		if err := json.Unmarshal(data, &e); err != nil || e.Error.Code == "" {
			return fmt.Errorf("control: unexpected response from control socket: %s", resp.Status)
		}
		if partial != nil && e.Result != nil {
			*partial = *e.Result
		}
		return fromWire(e.Error)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("control: decode response: %w", err)
	}
	return nil
}

// do sends req; an unreachable socket gives ErrUnavailable.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("control: %w", ctxErr)
		}
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return nil, fmt.Errorf("%w at %s (is the authgate server running with this data directory?): %v", ErrUnavailable, c.path, opErr.Err)
		}
		return nil, fmt.Errorf("control: socket %s: %w", c.path, err)
	}
	return resp, nil
}
