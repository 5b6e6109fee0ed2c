//go:build linux

package realkafka

import "syscall"

// childAttr makes a broker die with the process that started it, so a
// killed test run leaves no JVM behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
