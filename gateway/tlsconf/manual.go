package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrNoCertificate is returned when the certificate files cannot be used.
var ErrNoCertificate = errors.New("tlsconf: no usable certificate")

// fileCert serves a certificate/key pair from disk and re-reads it when
// either file's modification time or size changes. The files are checked
// at most once per checkEvery; a pair that fails to load keeps the last
// good certificate in service.
type fileCert struct {
	certFile, keyFile string
	now               func() time.Time
	checkEvery        time.Duration
	onReload          func(err error)

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     [2]fileStamp
	lastCheck time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func newFileCert(certFile, keyFile string, now func() time.Time, checkEvery time.Duration, onReload func(error)) (*fileCert, error) {
	f := &fileCert{certFile: certFile, keyFile: keyFile, now: now, checkEvery: checkEvery, onReload: onReload}
	st, err := f.stamps()
	if err != nil {
		return nil, err
	}
	if err := f.load(st); err != nil {
		return nil, err
	}
	f.lastCheck = now()
	return f, nil
}

func (f *fileCert) stamps() ([2]fileStamp, error) {
	var st [2]fileStamp
	for i, p := range []string{f.certFile, f.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return st, fmt.Errorf("%w: %w", ErrNoCertificate, err)
		}
		st[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return st, nil
}

func (f *fileCert) load(st [2]fileStamp) error {
	c, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("%w: %s / %s: %w", ErrNoCertificate, f.certFile, f.keyFile, err)
	}
	f.cert, f.stamp = &c, st
	return nil
}

// current returns the certificate in service, re-reading the files
// first when checkEvery has passed and they changed.
func (f *fileCert) current() *tls.Certificate {
	f.check(false)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cert
}

// check re-reads the files when they changed on disk: at most once per
// checkEvery, or now when force is set.
func (f *fileCert) check(force bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if !force && now.Sub(f.lastCheck) < f.checkEvery {
		return
	}
	f.lastCheck = now
	st, err := f.stamps()
	if err == nil && st != f.stamp {
		err = f.load(st)
		if f.onReload != nil {
			f.onReload(err)
		}
	}
}
