package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// ErrNoBackup is returned by Client.Backup when the server does not offer
// backups over its socket (an older version).
var ErrNoBackup = errors.New("control: the running server does not offer backups over its control socket (an older version? upgrade it, or stop it and back up the file)")

// Snapshotter runs fn inside one read transaction of the store with the
// size of a consistent copy and a writer of it (embedded.Store.Snapshot).
type Snapshotter func(fn func(size int64, snap io.WriterTo) error) error

// SocketOption adds an operation to NewSocketHandler's.
type SocketOption func(mux *http.ServeMux, h *handler)

// WithBackup serves GET /v1/backup: a copy of the store file written from
// one read transaction while the server goes on serving. Like every
// operation on the socket it is for whoever may connect (the 0600 socket
// is the access control); the copy holds password hashes and sealed TOTP
// secrets, so the client writes it 0600 too.
func WithBackup(snap Snapshotter) SocketOption {
	return func(mux *http.ServeMux, h *handler) {
		mux.HandleFunc("GET "+pathBackup, func(w http.ResponseWriter, r *http.Request) {
			started := false
			err := snap(func(size int64, tx io.WriterTo) error {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusOK)
				started = true
				_, err := tx.WriteTo(w)
				return err
			})
			switch {
			case err == nil:
				h.log.Info().Msg("control socket: backup sent")
			case started:
				// The client sees a short body and fails.
				h.log.Warn().Err(err).Msg("control socket: backup cut off")
			default:
				h.reply(w, nil, err, nil)
			}
		})
	}
}

// Backup copies the running server's store file to w, from one read
// transaction, and returns the bytes written. A server that does not
// answer gives ErrUnavailable before anything is written; one without
// the operation gives ErrNoBackup.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://authgate"+pathBackup, nil)
	if err != nil {
		return 0, fmt.Errorf("control: %w", err)
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e errorResponse
		if err := json.Unmarshal(data, &e); err != nil || e.Error.Code == "" {
			return 0, fmt.Errorf("control: unexpected response from control socket: %s", resp.Status)
		}
		if resp.StatusCode == http.StatusNotFound && e.Error.Code == codeBadRequest {
			return 0, ErrNoBackup
		}
		return 0, fromWire(e.Error)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("control: backup: %w", err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("control: backup: got %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}
