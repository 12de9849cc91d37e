package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

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
