//go:build e2e && linux

package e2e

import "syscall"

// childAttr makes a child die with the test binary, so a panic or a
// `go test -timeout` kill leaves no broker or collector running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
