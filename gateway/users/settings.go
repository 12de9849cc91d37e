package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/settings"
)

// Settings implements Admin.
func (s *Service) Settings(ctx context.Context) (SettingsInfo, error) {
	v, err := s.set.Current(ctx)
	if err != nil {
		return SettingsInfo{}, fmt.Errorf("read settings: %w", err)
	}
	src := ModeFromFile
	if v.ModeStored {
		src = ModeFromSettings
	}
	return SettingsInfo{Mode: v.Mode, ModeSource: src, Issuer: v.Issuer, DefaultIssuer: s.defaultIssuer}, nil
}

// Where the 2FA mode in force comes from (SettingsInfo.ModeSource).
const (
	ModeFromSettings = "set on the admin Settings page or with `authgate 2fa mode`; it wins over two_factor.mode in the config file"
	ModeFromFile     = "two_factor.mode in the config file, until it is set on the admin Settings page or with `authgate 2fa mode`"
)

// SetMode implements Admin.
func (s *Service) SetMode(ctx context.Context, mode string) error {
	if !settings.ValidMode(mode) {
		return invalid("2FA mode", "2FA mode %q: must be %s, %s or %s", mode, settings.ModeOff, settings.ModeOn, settings.ModeRequired)
	}
	was := s.previous(ctx, func(v settings.Values) string { return v.Mode })
	if err := s.set.SetMode(ctx, mode); err != nil {
		return settingError("2FA mode", err)
	}
	s.record(ctx, audit.SettingChanged, settings.KeyMode, settings.KeyMode+"="+mode+was)
	return nil
}

// SetIssuer implements Admin.
func (s *Service) SetIssuer(ctx context.Context, issuer string) error {
	was := s.previous(ctx, func(v settings.Values) string { return v.Issuer })
	if err := s.set.SetIssuer(ctx, issuer); err != nil {
		return settingError("issuer", err)
	}
	shown := issuer
	if shown == "" {
		shown = "(default: " + s.defaultIssuer + ")"
	}
	s.record(ctx, audit.SettingChanged, settings.KeyIssuer, settings.KeyIssuer+"="+shown+was)
	return nil
}

// previous describes a setting's value before a change for the audit
// detail, "" if it cannot be read.
func (s *Service) previous(ctx context.Context, pick func(settings.Values) string) string {
	v, err := s.set.Current(ctx)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (was %q)", pick(v))
}

// settingError turns the settings package's refusal of field into an
// *InvalidError with the same message.
func settingError(field string, err error) error {
	if ie, ok := errors.AsType[*settings.InvalidError](err); ok {
		return &InvalidError{Field: field, Message: ie.Message}
	}
	return fmt.Errorf("change settings: %w", err)
}
