package main

import "syscall"

// childAttr makes a child die with the test binary, so a failed or killed
// test leaves no server behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
