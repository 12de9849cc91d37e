package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/store"
)

// keyCheckSetting holds a value sealed with the secret key the store was
// first used with.
const keyCheckSetting = "secretbox.check"

var keyCheckPlain = []byte("authgate secret key check v1")

// ErrWrongKey means the configured secret key is not the one this store's
// TOTP secrets were sealed with.
var ErrWrongKey = errors.New("the secret key does not match the one this store was set up with")

type keyBox interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

type settingStore interface {
	GetSetting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
}

// checkKey refuses to start with a secret key other than the store's: with
// the wrong key every enrolled user would fail every code with no hint why.
// The first start records a sealed check value.
func checkKey(ctx context.Context, st settingStore, box keyBox) error {
	v, err := st.GetSetting(ctx, keyCheckSetting)
	if errors.Is(err, store.ErrNotFound) {
		sealed, err := box.Seal(keyCheckPlain, []byte(keyCheckSetting))
		if err != nil {
			return fmt.Errorf("secret key check: %w", err)
		}
		if err := st.SetSetting(ctx, keyCheckSetting, base64.StdEncoding.EncodeToString(sealed)); err != nil {
			return fmt.Errorf("secret key check: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("secret key check: %w", err)
	}
	sealed, err := base64.StdEncoding.DecodeString(v)
	if err == nil {
		_, err = box.Open(sealed, []byte(keyCheckSetting))
	}
	if err != nil {
		return fmt.Errorf("%w: restore the original secret_key_file or AUTHGATE_SECRET_KEY (TOTP secrets cannot be decrypted with this one)", ErrWrongKey)
	}
	return nil
}

// CheckBackupKey vets a backup's settings before a restore: when they hold
// the secret key check, the configured secret key (AUTHGATE_SECRET_KEY,
// else secret_key_file, which is read but never created) must open it,
// else the error matches ErrWrongKey. A backup without the check (the
// store never served) passes.
func CheckBackupKey(cfg *config.Config, settings map[string]string) error {
	v, ok := settings[keyCheckSetting]
	if !ok {
		return nil
	}
	var key secretbox.Key
	var err error
	if cfg.SecretKey != "" {
		if key, err = secretbox.ParseKey(cfg.SecretKey); err != nil {
			return fmt.Errorf("AUTHGATE_SECRET_KEY: %w", err)
		}
	} else if key, err = secretbox.Load(cfg.SecretKeyFile); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("secret_key_file %s does not exist: put the secret key the backup was made with there first (or set AUTHGATE_SECRET_KEY); the backup's TOTP secrets are sealed with it", cfg.SecretKeyFile)
		}
		return fmt.Errorf("secret_key_file: %w", err)
	}
	box, err := secretbox.New(key)
	if err != nil {
		return err
	}
	sealed, err := base64.StdEncoding.DecodeString(v)
	if err == nil {
		_, err = box.Open(sealed, []byte(keyCheckSetting))
	}
	if err != nil {
		return fmt.Errorf("%w: the backup was made with another secret key; restoring it would leave every TOTP secret undecryptable (configure the secret key it was made with, then restore)", ErrWrongKey)
	}
	return nil
}
