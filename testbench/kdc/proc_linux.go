//go:build linux

package kdc

import "syscall"

// childAttr makes krb5kdc die with the process that started it, so a
// killed test run leaves no KDC behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
