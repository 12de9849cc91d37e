//go:build !linux

package redistest

import "syscall"

// sysProcAttr: only Linux can tie the server's life to the test binary;
// elsewhere cleanup alone stops it.
func sysProcAttr() *syscall.SysProcAttr { return nil }
